"""Fixtures shared by the test modules: real R, an explicit shared namespace, a private
build cache, and the runtimes this machine must have.

POLYMAGIC_REQUIRE names runtimes that set-up installed (`make test` sets `r,cpp,cython`):
a test that cannot find one of them fails instead of skipping, so a broken install
cannot pass as a quiet row of skips. Only Julia, which no registry here ships, may skip.
"""
import os

import pytest

import polymagic as pm
from polymagic import hub

REQUIRABLE = ("r", "cpp", "cython", "julia")


def required_runtimes() -> set:
    """The runtimes POLYMAGIC_REQUIRE names (empty when it is unset)."""
    value = os.environ.get("POLYMAGIC_REQUIRE", "")
    names = {name.strip().lower() for name in value.split(",") if name.strip()}
    unknown = names - set(REQUIRABLE)
    if unknown:
        raise pytest.UsageError(f"POLYMAGIC_REQUIRE={value!r}: unknown {sorted(unknown)}; "
                                f"name some of {', '.join(REQUIRABLE)}")
    return names


def skip_unless_required(runtime: str, reason: str):
    """Skip the test for a missing runtime, or fail it when POLYMAGIC_REQUIRE names it."""
    if runtime in required_runtimes():
        pytest.fail(f"{reason}, but POLYMAGIC_REQUIRE names {runtime!r}: set-up installed "
                    f"it, so it must be found", pytrace=False)
    pytest.skip(reason)


def pytest_configure(config):
    required_runtimes()  # a misspelt POLYMAGIC_REQUIRE stops the run before any test


@pytest.fixture(scope="session")
def required():
    """The set of runtimes POLYMAGIC_REQUIRE says this machine has."""
    return required_runtimes()


@pytest.fixture(scope="session")
def R():
    """The embedded R engine. Where R is missing the test is skipped with the reason, or
    fails when POLYMAGIC_REQUIRE names r."""
    try:
        import rpy2  # noqa: F401
    except ImportError as missing:
        skip_unless_required("r", f"rpy2 is not installed ({missing}; "
                                  "pip install 'polymagic[r]')")
    try:
        pm.R.eval("NULL")
    except pm.BridgeUnavailable as missing:
        skip_unless_required("r", f"no R on this machine: {missing}")
    return pm.R


@pytest.fixture
def space(monkeypatch):
    """An explicit shared namespace for the test, reset afterwards."""
    monkeypatch.setitem(hub._state, "ipython", None)  # a magics test may have set it
    namespace = {}
    hub.use_namespace(namespace)
    yield namespace
    hub.use_namespace(None)


@pytest.fixture(scope="module")
def private_cache(tmp_path_factory):
    """The test module builds into its own fresh cache directory (use with
    `pytestmark = pytest.mark.usefixtures("private_cache")`)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("POLYMAGIC_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        yield
