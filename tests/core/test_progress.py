"""Long work shows what is being built and the time so far, in place, and leaves
nothing behind: on stderr in a terminal or a log, as a display in a notebook kernel."""
import os
import pty
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from polymagic.errors import ConfigError
from polymagic.progress import cell_label, describe, progress

# Waits that are long beside the progress delay used here (0.05 s): the tests assert
# what is shown, never how fast.
SLOW = "time.sleep(0.8)"


def _script(body: str) -> str:
    return "import time\nfrom polymagic.progress import progress\n" + textwrap.dedent(body)


def _run_piped(body: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _script(body)], capture_output=True,
                          text=True, timeout=120, env=dict(os.environ, **env))


def _run_in_terminal(body: str) -> bytes:
    """What a script writes to a terminal (a pseudo-terminal, so isatty() is true)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: its stdout and stderr are the terminal
        os.execv(sys.executable, [sys.executable, "-c", _script(body)])
    output = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    os.waitpid(pid, 0)
    return output


def test_slow_work_on_a_terminal_is_redrawn_in_place_then_erased():
    """On a terminal the line is drawn with a carriage return, redrawn, and erased at
    the end, so the output after it starts on a clean line."""
    shown = _run_in_terminal(f"""
        with progress("C++ cell `int f()`", delay=0.05):
            {SLOW}
        print("after")
    """)
    assert b"\rBuilding C++ cell `int f()`: " in shown, shown
    assert shown.count(b"\rBuilding") >= 2, shown  # redrawn, not written once
    assert shown.endswith(b"\r\x1b[Kafter\r\n"), shown


def test_slow_work_in_a_log_gets_a_line_when_shown_and_when_done():
    """stderr that is a pipe cannot be redrawn: one line at start, one at the end."""
    done = _run_piped(f"""
        with progress("Cython cell `def f()`", delay=0.05):
            {SLOW}
    """)
    lines = done.stderr.splitlines()
    assert len(lines) == 2, done.stderr
    assert lines[0].startswith("polymagic: Building Cython cell `def f()`: ")
    assert lines[0].endswith(" s ...")
    assert lines[1].endswith(" s, done")


def test_quick_work_shows_nothing():
    """Work that ends before the delay writes nothing at all."""
    done = _run_piped("""
        with progress("thing", delay=30):
            pass
        print("after")
    """)
    assert done.stderr == "" and done.stdout == "after\n"


def test_failed_work_says_failed_and_the_error_passes_unchanged():
    """An error inside the work ends the progress ('failed') and propagates as itself."""
    done = _run_piped(f"""
        try:
            with progress("thing", delay=0.05):
                {SLOW}
                raise LookupError("inner")
        except LookupError as error:
            print("caught", error)
    """)
    assert done.stdout == "caught inner\n"
    assert done.stderr.splitlines()[-1].endswith(" s, failed"), done.stderr


def test_nested_and_background_work_add_no_display():
    """Work inside shown work and work on other threads show nothing of their own."""
    done = _run_piped(f"""
        import threading
        def background():
            with progress("background", delay=0.0):
                {SLOW}
        worker = threading.Thread(target=background)
        worker.start()
        with progress("outer", delay=0.05):
            with progress("inner", delay=0.0):
                {SLOW}
        worker.join()
    """)
    assert "outer" in done.stderr
    assert "inner" not in done.stderr and "background" not in done.stderr


def test_the_delay_comes_from_the_environment():
    """POLYMAGIC_PROGRESS_DELAY sets the delay; a value that is no number says so."""
    done = _run_piped(f"""
        with progress("thing"):
            {SLOW}
    """, POLYMAGIC_PROGRESS_DELAY="0.05")
    assert "polymagic: Building thing:" in done.stderr
    bad = _run_piped("""
        from polymagic.errors import ConfigError
        try:
            with progress("thing"):
                pass
        except ConfigError as error:
            print(error)
    """, POLYMAGIC_PROGRESS_DELAY="soon")
    assert "POLYMAGIC_PROGRESS_DELAY='soon' is not a number of seconds" in bad.stdout


def test_a_slow_build_names_what_it_builds(tmp_path):
    """build.cached_build shows the label it is given while `produce` runs."""
    done = _run_piped("""
        from polymagic.build import cached_build
        def produce(staging):
            time.sleep(0.8)
            (staging / "thing.txt").write_text("built")
        print(cached_build("demo_0123", "thing.txt", produce, label="the demo thing"))
    """, POLYMAGIC_PROGRESS_DELAY="0.05", POLYMAGIC_CACHE_DIR=str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "polymagic: Building the demo thing: " in done.stderr


def test_cell_label_shows_the_first_line_of_code():
    """The label skips includes, imports and comments, and cuts long lines."""
    assert cell_label("C++", "#include <cmath>\n\n// add\nint add(int a, int b) {") == \
        "C++ cell `int add(int a, int b) {`"
    assert cell_label("Cython", "cimport numpy\n" + "def f(" + "x, " * 30 + "):").endswith(
        "…`")
    assert cell_label("C++", "// only a comment") == "C++ cell"
    assert describe("C++ cell", 3.25) == "Building C++ cell: 3.2 s"


def test_progress_outside_the_main_thread_is_silent():
    """In-process: a worker thread's progress starts no timer thread."""
    before = threading.active_count()
    seen = []

    def work():
        with progress("worker", delay=0.0):
            seen.append(threading.active_count())
    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    assert seen == [before + 1]  # the worker itself, no progress thread


def test_a_bad_delay_raises_config_error(monkeypatch):
    """In-process: the bad value is named."""
    monkeypatch.setenv("POLYMAGIC_PROGRESS_DELAY", "later")
    with pytest.raises(ConfigError, match="POLYMAGIC_PROGRESS_DELAY='later'"):
        with progress("thing"):
            pass


# ---------------------------------------------------------------------------------
# In a notebook kernel: the messages a frontend receives

@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    """A real IPython kernel with a private build cache and a short progress delay."""
    from jupyter_client.manager import start_new_kernel
    env = dict(os.environ, POLYMAGIC_PROGRESS_DELAY="0.05",
               POLYMAGIC_CACHE_DIR=str(tmp_path_factory.mktemp("cache")))
    manager, client = start_new_kernel(kernel_name="python3", env=env)
    yield client
    client.stop_channels()
    manager.shutdown_kernel(now=True)


def _execute(client, code: str) -> list[dict]:
    """Run `code`; the output messages of the request, in order (type, content)."""
    msg_id = client.execute(code)
    messages = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        message = client.get_iopub_msg(timeout=300)
        if message["parent_header"].get("msg_id") != msg_id:
            continue
        kind = message["msg_type"]
        if kind == "status" and message["content"]["execution_state"] == "idle":
            return messages
        if kind in ("stream", "display_data", "update_display_data", "clear_output",
                    "execute_result", "error"):
            messages.append((kind, message["content"]))
    raise AssertionError(f"no reply to {code!r}")


def _text(content: dict) -> str:
    return content.get("data", {}).get("text/plain", "") or content.get("text", "")


def test_notebook_display_is_updated_in_place_and_emptied(kernel):
    """Among other code, the progress is one display, updated through its display_id
    and emptied at the end; the cell's other output is untouched."""
    messages = _execute(kernel, textwrap.dedent(f"""
        import time
        from polymagic.progress import progress
        print("before")
        with progress("thing", delay=0.05):
            {SLOW}
        print("after")
    """))
    kinds = [kind for kind, _ in messages]
    assert "clear_output" not in kinds, messages
    shown = [content for kind, content in messages if kind == "display_data"]
    assert len(shown) == 1 and _text(shown[0]).startswith("Building thing: "), messages
    display_id = shown[0]["transient"]["display_id"]
    updates = [content for kind, content in messages if kind == "update_display_data"]
    assert updates and all(u["transient"]["display_id"] == display_id for u in updates)
    assert updates[-1]["data"] == {}, updates[-1]
    streams = "".join(c["text"] for kind, c in messages if kind == "stream")
    assert streams == "before\nafter\n"


def test_cell_magic_build_is_shown_then_cleared_leaving_nothing(kernel):
    """A slow %%cython cell shows 'Building Cython cell ...' and then clears it, so the
    cell (and the saved notebook) keeps no output at all."""
    _execute(kernel, "%load_ext polymagic")
    messages = _execute(kernel, f"%%cython\ndef triple(int x):\n    return 3 * x  # "
                                f"{os.urandom(4).hex()}\n")
    shown = [content for kind, content in messages if kind == "display_data"]
    assert shown and _text(shown[0]).startswith("Building Cython cell `def triple(int x):`")
    assert messages[-1][0] == "clear_output", messages
    assert _execute(kernel, "triple(14)")[-1][1]["data"]["text/plain"] == "42"


def test_cell_magic_output_during_the_build_is_kept(kernel):
    """When the magic wrote something while building (--verbose), the cell is not
    cleared: only the progress display is emptied."""
    messages = _execute(kernel, f"%%cython --verbose\ndef quad(int x):\n    return 4 * x"
                                f"  # {os.urandom(4).hex()}\n")
    kinds = [kind for kind, _ in messages]
    assert "clear_output" not in kinds, messages
    assert any(kind == "stream" for kind in kinds), messages
    updates = [content for kind, content in messages if kind == "update_display_data"]
    assert updates[-1]["data"] == {}
