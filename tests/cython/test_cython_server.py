"""What makes a new cell's build fast: the warm Cython server (server.py) and the
precompiled Python.h (pch.py). A new process's cells are turned into C by the server a
first process started, with the same results and errors; a dead, idle or switched-off
server is never in the way. Real processes, real Cython and gcc; server builds run in a
child process, as a new kernel would."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytest.importorskip("Cython", reason="Cython is not installed (pip install polymagic[cython])")

CHILD = textwrap.dedent("""\
    import json, sys
    from IPython.core.interactiveshell import InteractiveShell
    InteractiveShell.instance()  # an IPython session: only those start a server
    import os
    if os.environ.get("EXTRA_SYS_PATH"):
        sys.path.insert(0, os.environ["EXTRA_SYS_PATH"])  # as a notebook may do
    from polymagic.bridges import cython as bridge
    from polymagic.errors import CompileError
    source, include = sys.argv[1], sys.argv[2:]
    try:
        built = bridge.build(source, verbose=True, include_dirs=include)
        outcome = {"value": built.module.f(20)}
    except CompileError as error:
        outcome = {"error": str(error), "lines": error.lines}
    outcome["compiler_imported"] = "Cython.Compiler.Main" in sys.modules
    print(json.dumps(outcome))
    """)


def build_in_child(cache: Path, source: str, *include: str, **env) -> dict:
    """Build `source` in a new process using `cache`; its outcome and stderr."""
    finished = subprocess.run(
        [sys.executable, "-c", CHILD, source, *include], capture_output=True, text=True,
        timeout=300, env={**os.environ, "POLYMAGIC_CACHE_DIR": str(cache), **env})
    assert finished.returncode == 0, finished.stderr
    outcome = json.loads(finished.stdout.splitlines()[-1])
    outcome["stderr"] = finished.stderr
    return outcome


def cell(number: int) -> str:
    return f"# cell {number}\ndef f(int n):\n    cdef long a = 0, b = 1, i\n" \
           "    for i in range(n):\n        a, b = b, a + b\n    return a\n"


def wait_for(condition, seconds: float = 120) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def server_socket(cache: Path) -> Path | None:
    found = sorted(cache.glob("cython-server-*.sock"))
    return found[0] if found else None


def server_pid(stderr: str) -> int:
    marker = "the warm Cython server (pid "
    assert marker in stderr, stderr
    return int(stderr.split(marker)[1].split(")")[0])


def stop(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass


@pytest.fixture
def warm_cache(tmp_path):
    """A cache whose first (cold) build started a server, and that server's pid."""
    cache = tmp_path / "cache"
    first = build_in_child(cache, cell(0))
    assert first["value"] == 6765
    assert "Cython ran in this process" in first["stderr"]
    assert wait_for(lambda: server_socket(cache) is not None), "no server started"
    probe = build_in_child(cache, cell(1))
    pid = server_pid(probe["stderr"])
    yield cache, pid
    stop(pid)


def test_a_new_process_cythonizes_in_the_warm_server(warm_cache):
    """A new process's new cell is cythonized by the server: the process never imports
    Cython's compiler, and the module is the same as one built in-process."""
    cache, pid = warm_cache
    outcome = build_in_child(cache, cell(2))
    assert outcome["value"] == 6765
    assert server_pid(outcome["stderr"]) == pid
    assert outcome["compiler_imported"] is False
    assert "utility code shared" in outcome["stderr"]


def test_errors_from_the_server_point_at_cell_lines(warm_cache):
    """A Cython error found by the server is a CompileError at the cell's line."""
    cache, pid = warm_cache
    outcome = build_in_child(cache, "def f(int n):\n    return n +\n")
    assert server_pid(outcome["stderr"]) == pid
    assert outcome["lines"] == [2]
    assert "cell:2:" in outcome["error"]


def test_a_pxd_written_after_the_server_started_is_found(warm_cache, tmp_path):
    """The server forgets Cython's file lookups between requests: a .pxd that did not
    exist at the first request is found at the next."""
    cache, pid = warm_cache
    include = tmp_path / "include"
    include.mkdir()
    source = "from late_defs cimport twice\ndef f(int n):\n    return twice(n)\n"
    missing = build_in_child(cache, source, str(include))
    assert server_pid(missing["stderr"]) == pid
    assert "late_defs" in missing["error"]
    (include / "late_defs.pxd").write_text("cdef inline int twice(int n):\n"
                                           "    return 2 * n\n")
    found = build_in_child(cache, source, str(include))
    assert server_pid(found["stderr"]) == pid
    assert found["value"] == 40


def test_pxd_files_are_found_along_the_clients_sys_path(warm_cache, tmp_path):
    """A .pxd in a directory the client added to sys.path is found by the server, as
    Cython finds it in-process."""
    cache, pid = warm_cache
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "path_defs.pxd").write_text("cdef inline int thrice(int n):\n"
                                         "    return 3 * n\n")
    source = "from path_defs cimport thrice\ndef f(int n):\n    return thrice(n)\n"
    outcome = build_in_child(cache, source, EXTRA_SYS_PATH=str(extra))
    assert server_pid(outcome["stderr"]) == pid
    assert outcome["value"] == 60


def test_a_killed_server_is_replaced_and_the_cell_still_builds(warm_cache):
    """A server killed (its socket left behind) is not in the way: the next process runs
    Cython itself and starts a new server."""
    cache, pid = warm_cache
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: not Path(f"/proc/{pid}").exists() or
                    "zombie" in Path(f"/proc/{pid}/status").read_text().lower(), 30)
    outcome = build_in_child(cache, cell(3))
    assert outcome["value"] == 6765
    assert "Cython ran in this process" in outcome["stderr"]
    numbers = iter(range(100, 200))  # a new cell each time: a cached one runs no Cython
    assert wait_for(lambda: _answers(cache, next(numbers), pid)), "no new server took over"


def _answers(cache: Path, number: int, old_pid: int) -> bool:
    outcome = build_in_child(cache, cell(number))
    if "the warm Cython server (pid " not in outcome["stderr"]:
        return False
    new_pid = server_pid(outcome["stderr"])
    stop(new_pid)
    return new_pid != old_pid


def test_an_idle_server_exits_and_removes_its_socket(tmp_path):
    """POLYMAGIC_CYTHON_SERVER_IDLE: after that long without a request the server
    exits and its socket is gone."""
    from polymagic.bridges.cython import server
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    path = server.socket_path(cache)
    launcher = subprocess.run([sys.executable, "-c", server.LAUNCH, str(path)],
                              timeout=60, env={**os.environ, "POLYMAGIC_CACHE_DIR":
                                               str(cache), "POLYMAGIC_CYTHON_SERVER_IDLE": "3"})
    assert launcher.returncode == 0
    assert wait_for(path.exists), "the server did not start listening"
    assert wait_for(lambda: not path.exists(), 60), "the idle server stayed"


def test_a_script_starts_no_server(tmp_path):
    """Outside IPython (a script, a test run) a cold build starts no server."""
    cache = tmp_path / "cache"
    finished = subprocess.run(
        [sys.executable, "-c", "from polymagic.bridges import cython as bridge\n"
         f"assert bridge.cython({cell(7)!r}).f(20) == 6765"], capture_output=True,
        text=True, timeout=300, env={**os.environ, "POLYMAGIC_CACHE_DIR": str(cache)})
    assert finished.returncode == 0, finished.stderr
    time.sleep(3)  # a server would have created its lock file by now
    assert not list(cache.glob("cython-server-*"))


def test_switched_off_no_server_starts(tmp_path):
    """POLYMAGIC_CYTHON_SERVER=off: Cython runs in the process and no server starts."""
    cache = tmp_path / "cache"
    outcome = build_in_child(cache, cell(6), POLYMAGIC_CYTHON_SERVER="off")
    assert outcome["value"] == 6765
    assert "Cython ran in this process" in outcome["stderr"]
    time.sleep(3)  # a server would have created its lock file by now
    assert not list(cache.glob("cython-server-*"))


def test_python_h_is_precompiled_once_and_then_used(tmp_path, monkeypatch, capfd):
    """The first build precompiles Python.h in the background; a later cell's compiler
    finds it ahead of the real header (GCC's -H marks a used one with "!"), and the
    module works. A cell with include directories of its own does not use it."""
    from polymagic.bridges import cython as bridge
    monkeypatch.setenv("POLYMAGIC_CACHE_DIR", str(tmp_path))
    flags = ["-H", "-Winvalid-pch"]  # a toolchain of its own: its own precompiled header
    assert bridge.cython(cell(8), compile_args=flags).f(20) == 6765
    assert wait_for(lambda: list(tmp_path.glob("cypch_*/Python.h.gch"))), "not built"
    capfd.readouterr()
    assert bridge.cython(cell(9), compile_args=flags, verbose=True).f(20) == 6765
    stderr = capfd.readouterr().err
    header, = tmp_path.glob("cypch_*/Python.h.gch")
    assert f"-I{header.parent} " in stderr
    assert f"! {header}" in stderr, stderr[-3000:]
    assert "not used because" not in stderr
    bridge.cython(cell(10), compile_args=flags, include_dirs=[str(tmp_path)], verbose=True)
    assert "Python.h.gch" not in capfd.readouterr().err
