# `make demo` and `make test` set everything up themselves: R (Debian packages, when R
# is missing), a virtual environment in .venv/ with polymagic installed editable with
# every extra, then run the tour notebook or the test suite. `make test` also installs
# Debian's chromium for the browser test (tests/browser), when missing and root.
VENV    := .venv
PYTHON  := $(VENV)/bin/python
STAMP   := $(VENV)/.polymagic-installed
BUILD   := build
PYTEST_ARGS ?=

.PHONY: setup r-runtime browser-runtime test demo bench clean

setup: r-runtime $(STAMP)

# rpy2 is built against R, so R must exist before pip runs.
r-runtime:
	@if command -v R >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "R is missing: installing Debian's r-base-core r-base-dev"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y r-base-core r-base-dev \
	  || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y r-base-core r-base-dev; }; \
	else \
	  echo "R is missing and this is not root. Run:"; \
	  echo "  sudo apt-get install -y r-base-core r-base-dev"; \
	  echo "then run make again."; exit 1; \
	fi

# The browser test drives JupyterLab in Debian's chromium (playwright cannot download its
# own browsers here). Without root it is left out: the test then skips and says why.
browser-runtime:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "chromium is missing: installing Debian's chromium for the browser test"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y chromium \
	  || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }; \
	else \
	  echo "chromium is missing and this is not root: the browser test will skip."; \
	  echo "  (sudo apt-get install -y chromium, then make test again, to run it)"; \
	fi

$(STAMP): pyproject.toml
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -e '.[all,test]'
	touch $@

# Set-up installs R (r-base-dev brings g++) and Cython (the extras): a test that cannot
# find one of them fails instead of skipping. Only Julia may skip.
test: setup browser-runtime
	POLYMAGIC_REQUIRE=r,cpp,cython $(PYTHON) -m pytest $(PYTEST_ARGS)

demo: setup
	$(PYTHON) scripts/run_notebook.py notebooks/tour.ipynb --out $(BUILD)/notebooks

bench: setup
	$(PYTHON) bench/run_all.py

clean:
	rm -rf $(BUILD) $(VENV)
