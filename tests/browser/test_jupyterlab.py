"""What a user sees in JupyterLab, in a real browser (Debian's Chromium, driven by
Playwright): every notebook of notebooks/ under Run All, then the Interrupt button.

Checks, per notebook: plots are rendered images; error outputs appear where a cell
declares one and hold no frame of polymagic's own files; builds leave nothing in the
saved notebook. A cell that builds new C++ shows its progress display while it builds
(updated in place, one display) and nothing of it stays on the page or in the saved
notebook. An endless R loop (and C++ loop) stopped with the toolbar's Interrupt button
leaves the kernel alive with its variables.

JupyterLab runs on 127.0.0.1 with a token, in a copy of notebooks/ with its own
settings, and is killed at the end. It uses the build cache the tests use (warm after a
first run); the progress cell's source is new on every run, so it always builds.
Screenshots go to build/browser/. The test skips only when Chromium is missing and
cannot be installed (not root); `make test` installs it.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

import polymagic

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SHOTS = ROOT / "build" / "browser"
PACKAGE_DIR = str(Path(polymagic.__file__).resolve().parent) + os.sep
TOKEN = "polymagic-browser-test"
PROGRESS_DELAY_S = "0.2"  # a C++ build takes seconds: the display shows and is redrawn
RUN_TIMEOUT_MS = 600_000

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _chromium() -> str:
    """Debian's Chromium, installed with apt-get when missing and this is root."""
    found = shutil.which("chromium")
    if found:
        return found
    if os.geteuid() != 0:
        pytest.skip("the browser test needs Debian's chromium, which is not installed, and "
                    "only root can install it: run `sudo apt-get install -y chromium` (or "
                    "`make test` as root)")
    install = ["apt-get", "install", "-y", "chromium"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, check=True)
        subprocess.run(install, env=env, capture_output=True, check=True)
    return shutil.which("chromium")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _settings(folder: Path) -> None:
    """Start the notebook's kernel without asking; no news or update pop-ups."""
    values = {"notebook-extension/tracker": {"autoStartDefaultKernel": True},
              "apputils-extension/notification": {"fetchNews": "false",
                                                  "checkForUpdates": False}}
    for name, setting in values.items():
        extension, plugin = name.split("/")
        path = folder / "@jupyterlab" / extension / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(setting))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server over a copy of notebooks/ (plus the interrupt notebook);
    yields (base URL, its folder); killed with its kernels at the end."""
    chromium = _chromium()
    home = tmp_path_factory.mktemp("lab")
    work = home / "notebooks"
    shutil.copytree(ROOT / "notebooks", work)
    _write_notebook(work / "interrupt.ipynb", INTERRUPT_CELLS)
    _write_notebook(work / "progress.ipynb", _progress_cells())
    _settings(home / "settings")
    port = _free_port()
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(home / "config"),
               JUPYTER_RUNTIME_DIR=str(home / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(home / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
               POLYMAGIC_PROGRESS_DELAY=PROGRESS_DELAY_S)
    log = open(home / "server.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
         "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={TOKEN}",
         f"--ServerApp.root_dir={work}", "--LabApp.expose_app_in_browser=True"],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for_server(base, server, home / "server.log")
        yield base, work, chromium
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the server and the kernels it started
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def _wait_for_server(base: str, server, log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"JupyterLab exited:\n{log.read_text()}")
        try:
            urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=5)
            return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"JupyterLab did not answer in 120 s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def page(lab):
    """One browser tab on JupyterLab, as a user keeps it open; each test opens its
    notebook from the file browser and closes it (kernel shut down) at the end."""
    from playwright.sync_api import sync_playwright
    base, _, chromium = lab
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        tab = browser.new_page(viewport={"width": 1400, "height": 1000})
        tab.set_default_timeout(120_000)  # the machine may be busy: load, not failure
        tab.goto(f"{base}/lab?reset&token={TOKEN}")
        tab.wait_for_function("() => window.jupyterapp && jupyterapp.shell", timeout=120_000)
        yield tab
        browser.close()


# ---------------------------------------------------------------------------------
# Driving JupyterLab as a user does (menus, toolbar), reading its state through the
# app object it exposes (window.jupyterapp)

CURRENT = "jupyterapp.shell.currentWidget"
IDLE = (f"window.jupyterapp && {CURRENT} && {CURRENT}.sessionContext && "
        f"{CURRENT}.sessionContext.session && {CURRENT}.sessionContext.session.kernel"
        f" && {CURRENT}.sessionContext.session.kernel.status === 'idle'")
KERNEL_IDLE = f"() => {IDLE}"
ALL_RUN = (f"() => {CURRENT}.content.widgets.every(cell => cell.model.type !== 'code' || "
           f"(cell.model.executionCount !== null && cell.promptNode.textContent !== '[*]:'))"
           f" && {CURRENT}.sessionContext.session.kernel.status === 'idle'")

# Records every progress display the page shows while cells run: its text, and how
# many were on the page at once (one per cell, updated in place).
WATCH_PROGRESS = """() => {
  window.pmProgress = {texts: [], most: 0};
  const look = () => {
    const shown = [...document.querySelectorAll('.jp-OutputArea-output')]
      .filter(node => /^Building .*: \\d+\\.\\d s$/.test(node.innerText.trim()));
    window.pmProgress.most = Math.max(window.pmProgress.most, shown.length);
    for (const node of shown) window.pmProgress.texts.push(node.innerText.trim());
  };
  new MutationObserver(look).observe(document.body,
                                     {subtree: true, childList: true, characterData: true});
}"""


SHOW_PROGRESS = """() => {
  const node = [...document.querySelectorAll('.jp-OutputArea-output')]
    .find(node => node.innerText.trim().startsWith('Building '));
  if (node) node.closest('.jp-Cell').scrollIntoView({block: 'center'});
}"""

ERROR_OUTPUT = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"


def _shoot_outputs(page, stem: str) -> None:
    """A screenshot of each error output and each plot, for people to look at."""
    for kind, selector in (("error", ERROR_OUTPUT), ("plot", ".jp-OutputArea-output img")):
        found = page.locator(selector)
        for index in range(found.count()):
            found.nth(index).screenshot(path=SHOTS / f"{stem}-{kind}-{index + 1}.png")


@contextlib.contextmanager
def _opened(page, name: str):
    """Open notebook `name` by double-clicking it in the file browser; on leaving, shut
    its kernel down and close it (saved, so no dialog asks)."""
    page.locator(".jp-DirListing-itemText").get_by_text(name, exact=True).dblclick()
    page.wait_for_function(f"() => {CURRENT} && {CURRENT}.context && "
                           f"{CURRENT}.context.path === {name!r}", timeout=60_000)
    page.wait_for_function(KERNEL_IDLE, timeout=120_000)
    try:
        yield
    finally:
        page.evaluate(f"async () => {{ const widget = {CURRENT}; "
                      f"await widget.sessionContext.shutdown(); widget.dispose(); }}")


def _menu(page, menu: str, command: str) -> None:
    page.get_by_role("menuitem", name=menu, exact=True).click()
    page.locator(f"li[data-command='{command}']").click()


def _save(page) -> None:
    _menu(page, "File", "docmanager:save")
    page.wait_for_function(f"() => !{CURRENT}.context.model.dirty", timeout=30_000)


def _cells(page) -> list[dict]:
    """Each code cell as the page shows it: source, tags, error and plot outputs."""
    return page.evaluate(f"""() => {CURRENT}.content.widgets
      .filter(cell => cell.model.type === 'code')
      .map(cell => ({{
        source: cell.model.sharedModel.getSource(),
        tags: cell.model.getMetadata('tags') || [],
        errors: [...cell.node.querySelectorAll(
          "{ERROR_OUTPUT}")].map(node => node.innerText),
        images: [...cell.node.querySelectorAll('.jp-OutputArea-output img')]
          .map(img => img.complete && img.naturalWidth > 0 ? img.naturalWidth : 0),
      }}))""")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_run_all_shows_plots_and_clean_errors(lab, page, path):
    """Run All: each declared plot is a rendered image, each declared error is shown
    without polymagic's frames (and no other cell fails); builds leave nothing in the
    saved notebook."""
    _, work, _ = lab
    with _opened(page, path.name):
        page.evaluate(WATCH_PROGRESS)
        started = time.monotonic()
        _menu(page, "Run", "runmenu:run-all")
        page.wait_for_function(ALL_RUN, timeout=RUN_TIMEOUT_MS)
        elapsed = time.monotonic() - started
        page.screenshot(path=SHOTS / f"{path.stem}.png")
        _shoot_outputs(page, path.stem)
        cells = _cells(page)
        progress = page.evaluate("() => window.pmProgress")
        _save(page)
    saved = nbformat.read(work / path.name, as_version=4)
    print(f"{path.name}: Run All took {elapsed:.1f} s in the browser")

    problems = []
    for index, cell in enumerate(cells):
        head = cell["source"].splitlines()[0] if cell["source"] else ""
        expects_error = "raises-exception" in cell["tags"]
        if expects_error and not cell["errors"]:
            problems.append(f"cell {index} ({head}) shows no error")
        if cell["errors"] and not expects_error:
            problems.append(f"cell {index} ({head}) failed: {cell['errors'][0][-500:]}")
        for error in cell["errors"]:
            if PACKAGE_DIR in error:
                problems.append(f"cell {index} ({head}) shows polymagic's frames:\n{error}")
        if "expect-display: image/png" in cell["source"] and not any(cell["images"]):
            problems.append(f"cell {index} ({head}) shows no rendered plot")
    assert not problems, "\n".join(problems)
    assert progress["most"] <= 1, progress  # a build shows one display, updated in place
    _assert_builds_left_nothing(saved)


def _assert_builds_left_nothing(saved) -> None:
    """No progress text in the saved notebook; a build cell that declares no output of
    its own keeps no output at all."""
    assert "Building " not in json.dumps([cell.get("outputs", []) for cell in saved.cells])
    for cell in saved.cells:
        if cell.cell_type == "code" and cell.source.startswith(("%%cpp", "%%cython")) \
                and "expect" not in cell.source and "raises:" not in cell.source:
            assert cell.outputs == [], cell


def _progress_cells() -> list[str]:
    """A C++ cell the cache has never seen (its comment is new on every run) that takes
    seconds to build, as cells using <regex> do."""
    return ["%load_ext polymagic",
            f"%%cpp\n// run {os.urandom(8).hex()}\n#include <regex>\n#include <string>\n"
            "double twice(double x) { return 2 * x; }\n"
            "bool has_digit(const std::string& s) "
            "{ return std::regex_search(s, std::regex(\"[0-9]\")); }",
            "print('twice:', twice(21.0))"]


def test_slow_build_shows_progress_in_place_and_leaves_nothing(lab, page):
    """While a new C++ cell builds, its cell shows 'Building C++ cell `double twice(...`:
    N s', redrawn in place as one display; when the build ends it is gone from the page
    and from the saved notebook, and the cell's function works."""
    _, work, _ = lab
    with _opened(page, "progress.ipynb"):
        page.evaluate(WATCH_PROGRESS)
        _menu(page, "Run", "runmenu:run-all")
        page.wait_for_function("() => window.pmProgress.texts.length > 0", timeout=120_000)
        page.evaluate(SHOW_PROGRESS)
        page.screenshot(path=SHOTS / "progress-during-build.png")
        page.wait_for_function(ALL_RUN, timeout=RUN_TIMEOUT_MS)
        page.screenshot(path=SHOTS / "progress-after-build.png")
        progress = page.evaluate("() => window.pmProgress")
        build_output = _cell_text(page, 1)
        result = _cell_text(page, 2)
        _save(page)
    saved = nbformat.read(work / "progress.ipynb", as_version=4)
    texts = sorted(set(progress["texts"]))
    print(f"progress shown: {texts}")
    assert all(text.startswith("Building C++ cell `double twice(double x) {") for text in texts)
    assert len(texts) >= 2 and progress["most"] == 1, progress  # redrawn, one display
    assert build_output.strip() == "" and result.strip() == "twice: 42.0"
    assert saved.cells[1].outputs == []
    _assert_builds_left_nothing(saved)


# ---------------------------------------------------------------------------------
# The Interrupt button

# R is started by the first cell, so the interrupt lands in the loop, not in R's start.
INTERRUPT_CELLS = [
    "%load_ext polymagic\nimport polymagic as pm\nbefore = 41\npm.R.eval('NULL')",
    "%%R\ncat('looping\\n')\nwhile (TRUE) {}",
    "print('R interrupted; kernel alive:', before + 1)",
    "%%cpp\n#include <polymagic.hpp>\nvoid spin() { while (true) pm::check_interrupt(); }",
    "print('looping', flush=True)\nspin()",
    "print('C++ interrupted; kernel alive:', before + 1)",
]


def _write_notebook(path: Path, sources: list[str]) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    nbformat.write(notebook, path)


def _run_cell(page, index: int) -> None:
    """Select cell `index` and run it with the Run menu."""
    page.evaluate(f"() => {{ {CURRENT}.content.activeCellIndex = {index}; }}")
    _menu(page, "Run", "notebook:run-cell")


def _cell_text(page, index: int) -> str:
    return page.evaluate(f"() => {CURRENT}.content.widgets[{index}].outputArea.node"
                         f".innerText")


def _interrupt_while_running(page, index: int, shot: str) -> str:
    """Run cell `index`, wait until it says it is looping, press the toolbar's Interrupt
    button; the text the cell then shows."""
    _run_cell(page, index)
    page.wait_for_function(
        f"() => {CURRENT}.content.widgets[{index}].outputArea.node.innerText"
        f".includes('looping')", timeout=60_000)
    time.sleep(0.5)  # inside the loop
    page.locator("jp-button[data-command='notebook:interrupt-kernel']").click()
    page.wait_for_function(KERNEL_IDLE, timeout=10_000)  # an interrupt lands in ms
    page.screenshot(path=SHOTS / shot)
    return _cell_text(page, index)


def test_interrupt_button_stops_an_r_loop_and_the_kernel_lives(page):
    """`while (TRUE) {}` in %%R stops at the Interrupt button with KeyboardInterrupt,
    and the same kernel (its variables intact) runs the next cell."""
    with _opened(page, "interrupt.ipynb"):
        _run_cell(page, 0)
        page.wait_for_function(KERNEL_IDLE, timeout=60_000)
        shown = _interrupt_while_running(page, 1, "interrupt-r.png")
        assert "KeyboardInterrupt" in shown, shown
        assert PACKAGE_DIR not in shown, shown
        _run_cell(page, 2)
        page.wait_for_function(f"() => {CURRENT}.content.widgets[2].model.executionCount"
                               f" && {IDLE}", timeout=60_000)
        assert _cell_text(page, 2).strip() == "R interrupted; kernel alive: 42"
        _save(page)


def test_interrupt_button_stops_a_cpp_loop_and_the_kernel_lives(page):
    """An endless loop in a %%cpp function that checks pm::check_interrupt() stops at
    the Interrupt button with KeyboardInterrupt, and the same kernel runs the next cell."""
    with _opened(page, "interrupt.ipynb"):
        _run_cell(page, 0)
        page.wait_for_function(KERNEL_IDLE, timeout=60_000)
        _run_cell(page, 3)
        page.wait_for_function(KERNEL_IDLE, timeout=120_000)
        shown = _interrupt_while_running(page, 4, "interrupt-cpp.png")
        assert "KeyboardInterrupt" in shown, shown
        assert PACKAGE_DIR not in shown, shown
        _run_cell(page, 5)
        page.wait_for_function(f"() => {CURRENT}.content.widgets[5].model.executionCount"
                               f" && {IDLE}", timeout=60_000)
        assert _cell_text(page, 5).strip() == "C++ interrupted; kernel alive: 42"
        _save(page)
