"""A mistake in a %%cpp cell never costs the session (issue 9, C++ section).

Every dangerous case runs in a child process, which must survive the mistake (a clear
Python exception instead of a crash, an exit or a hang) and keep working afterwards.
The children share one cache directory, so the cell is compiled once for the module.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from polymagic.errors import CompileError, CppOptionError

if subprocess.run(["sh", "-c", "command -v c++ || command -v g++"],
                  capture_output=True).returncode != 0:
    pytest.skip("no C++ compiler on PATH", allow_module_level=True)

CELL = r"""
#include <polymagic.hpp>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

int ok(int x) { return x + 1; }
int null_read() { volatile int* p = nullptr; return *p; }
int divide(int a, int b) { return a / b; }
int runaway(int n) { volatile char pad[512]; pad[0] = (char)n; return runaway(n + 1) + pad[0]; }
void call_abort() { std::abort(); }
void call_trap() { __builtin_trap(); }
int bus_error() {
    std::FILE* file = std::tmpfile();
    if (ftruncate(fileno(file), 4096) != 0) return -1;
    auto* page = (volatile char*)mmap(nullptr, 8192, PROT_READ, MAP_SHARED, fileno(file), 0);
    return page[5000];  // past the end of the file: SIGBUS
}
void call_exit(int status) { exit(status); }
void call__Exit(int status) { _Exit(status); }
void call_quick_exit(int status) { quick_exit(status); }

static int destroyed = 0;
struct Sentinel { ~Sentinel() { ++destroyed; } };
int destroyed_count() { return destroyed; }
long checked_loop() {
    Sentinel sentinel;
    std::puts("looping"); std::fflush(stdout);
    volatile long x = 0;
    for (long i = 0; ; ++i) {
        if (i % 4096 == 0) pm::check_interrupt();
        x = x + 1;
    }
}
long unchecked_loop() {
    Sentinel sentinel;
    std::puts("looping"); std::fflush(stdout);
    volatile long x = 0;
    for (;;) x = x + 1;
}
double call_back(double (*f)(double), double x) { return f(x) + 1; }
"""

# The child: load CELL (cached after the first child), run argv[1], print "alive: 2".
PRELUDE = textwrap.dedent("""
    import sys
    import polymagic as pm
    from polymagic.errors import CppExit, CppFault
    m = pm.cpp(open(sys.argv[1]).read())
""")


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def cell_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cell") / "cell.cpp"
    path.write_text(CELL)
    return path


def child(cache: Path, cell_file: Path, body: str, env=None) -> subprocess.Popen:
    """A Python process running PRELUDE, then `body`, then printing "alive: 2"."""
    script = PRELUDE + textwrap.dedent(body) + "\nprint('alive:', m.ok(1), flush=True)\n"
    environment = dict(os.environ, POLYMAGIC_CACHE_DIR=str(cache),
                       POLYMAGIC_PROGRESS_DELAY="1000", **(env or {}))
    environment.pop("PYTHONFAULTHANDLER", None)  # a crash must show as the signal
    return subprocess.Popen([sys.executable, "-c", script, str(cell_file)], env=environment,
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def cell_line(function: str) -> int:
    """The line of CELL where `function` is defined."""
    return next(number for number, text in enumerate(CELL.splitlines(), start=1)
                if f" {function}(" in text and "{" in text)


def run(cache: Path, cell_file: Path, body: str, env=None) -> subprocess.CompletedProcess:
    process = child(cache, cell_file, body, env)
    out, err = process.communicate(timeout=600)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def survived(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, \
        f"child ended with status {result.returncode}:\n{result.stdout}\n{result.stderr}"
    assert result.stdout.rstrip().endswith("alive: 2"), result.stdout + result.stderr
    return result.stdout


FAULTS = {
    "segfault": ("m.null_read()", "SIGSEGV", "invalid memory access at address 0x0"),
    "bus error": ("m.bus_error()", "SIGBUS", "bus error at address"),
    "integer division by zero": ("m.divide(1, 0)", "SIGFPE", "integer division by zero"),
    "stack overflow": ("m.runaway(0)", "SIGSEGV", "stack overflow"),
    "abort()": ("m.call_abort()", "SIGABRT", "abort() was called"),
    "illegal instruction": ("m.call_trap()", "SIGILL", "illegal instruction"),
}


@pytest.mark.parametrize("case", FAULTS)
def test_fault_raises_cpp_fault_and_the_process_lives(cache, cell_file, case):
    """Each fault, twice in a row, raises CppFault naming the signal, the function and
    the cell and advising a restart; the process goes on calling C++."""
    call, signal_name, detail = FAULTS[case]
    out = survived(run(cache, cell_file, f"""
        for attempt in range(2):
            try:
                {call}
            except CppFault as error:
                assert type(error) is CppFault, type(error)
                print("signal:", error.signal, "function:", error.function)
                print("cell:", error.cell, "line:", error.line)
                print("message:", error.message)
            print("between:", m.ok(41))
    """))
    function = call.split("(")[0].removeprefix("m.")
    assert out.count(f"signal: {signal_name} function: {function}") == 2, out
    assert out.count("between: 42") == 2
    assert f"line: {cell_line(function)}" in out and "cell: <C++ cell " in out, out
    assert f"{function}() in <C++ cell " in out and f"stopped by {signal_name}" in out
    assert detail in out and "may be damaged" in out and "restart" in out, out


def test_fault_in_a_call_from_a_python_thread_is_raised_there(cache, cell_file):
    """Calls from Python threads are guarded too (each thread gets its own chain and
    alternate signal stack on its first call): a segfault and a stack overflow in a
    worker thread raise CppFault in that thread."""
    out = survived(run(cache, cell_file, """
        import threading
        caught = []
        def work(call):
            try:
                call()
            except CppFault as error:
                caught.append((error.function, error.signal))
        for call in (m.null_read, lambda: m.runaway(0), m.null_read):
            thread = threading.Thread(target=work, args=(call,))
            thread.start()
            thread.join()
        print("caught:", caught)
    """))
    assert ("caught: [('null_read', 'SIGSEGV'), ('runaway', 'SIGSEGV'), "
            "('null_read', 'SIGSEGV')]") in out, out


def test_faults_can_be_turned_off(cache, cell_file):
    """POLYMAGIC_CPP_FAULTS=off: a segfault ends the process, as in plain C++."""
    result = run(cache, cell_file, "m.null_read()", env={"POLYMAGIC_CPP_FAULTS": "off"})
    assert result.returncode == -signal.SIGSEGV, (result.returncode, result.stderr)
    assert "alive" not in result.stdout


EXITS = {"exit": ("m.call_exit(3)", 3), "_Exit": ("m.call__Exit(4)", 4),
         "quick_exit": ("m.call_quick_exit(5)", 5)}


@pytest.mark.parametrize("how", EXITS)
def test_exit_raises_cpp_exit_instead_of_ending_python(cache, cell_file, how):
    """exit(), _Exit() and quick_exit() in a cell raise CppExit (a CppFault) with the
    status; Python goes on and ends with its own status, 0."""
    call, status = EXITS[how]
    out = survived(run(cache, cell_file, f"""
        try:
            {call}
        except CppExit as error:
            print("how:", error.how, "status:", error.status, "fault:",
                  isinstance(error, CppFault))
            print("message:", error.message)
    """))
    assert f"how: {how} status: {status} fault: True" in out, out
    assert f"called {how}({status})" in out and "restart" in out, out


def test_fault_in_a_nested_call_reaches_the_outer_caller(cache, cell_file):
    """C++ -> Python -> C++ (faults): the inner call's CppFault rises through the
    Python callback and the outer C++ call as the same object."""
    out = survived(run(cache, cell_file, """
        inner = []
        def callback(x):
            try:
                m.null_read()
            except CppFault as error:
                inner.append(error)
                raise
        try:
            m.call_back(callback, 1.0)
        except CppFault as error:
            print("same object:", error is inner[0], "function:", error.function)
        print("after:", m.call_back(lambda x: 2 * x, 1.0))
    """))
    assert "same object: True function: null_read" in out and "after: 3.0" in out, out


def test_fault_in_python_code_called_from_cpp_is_not_taken(cache, cell_file):
    """A segfault inside Python code that C++ called is not polymagic's to catch
    (jumping over Python's frames would wreck the interpreter): the process ends with
    SIGSEGV, as it would without polymagic."""
    result = run(cache, cell_file, """
        import ctypes
        m.call_back(lambda x: ctypes.string_at(0), 1.0)
    """)
    assert result.returncode == -signal.SIGSEGV, (result.returncode, result.stderr)


def _interrupt(cache, cell_file, function: str, times: int) -> str:
    """Start `function` in a child, send it `times` SIGINTs once it loops (the way a
    terminal or Jupyter's Interrupt button does), and return what the child printed."""
    process = child(cache, cell_file, f"""
        import time
        started = time.perf_counter()
        try:
            m.{function}()
        except KeyboardInterrupt as error:
            print("KeyboardInterrupt:", str(error) or "(no message)", flush=True)
        print("destroyed:", m.destroyed_count())
        time.sleep(0.5)  # a second, pending interrupt would surface here
    """)
    try:
        assert process.stdout.readline().strip() == "looping"
        for _ in range(times):
            time.sleep(0.3)
            process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    result = subprocess.CompletedProcess(process.args, process.returncode, out, err)
    return survived(result)


def test_check_interrupt_turns_ctrl_c_into_keyboard_interrupt(cache, cell_file):
    """A loop calling pm::check_interrupt() stops at the first Ctrl-C: KeyboardInterrupt
    in Python, the C++ frames unwound (the destructor ran), one interrupt only."""
    out = _interrupt(cache, cell_file, "checked_loop", 1)
    assert "KeyboardInterrupt: (no message)" in out and "destroyed: 1" in out, out
    assert out.count("KeyboardInterrupt") == 1


def test_second_ctrl_c_stops_a_loop_that_never_checks(cache, cell_file):
    """A loop that never checks is stopped by force at the second Ctrl-C, with the
    warning of a fault (no destructor ran); the process goes on."""
    out = _interrupt(cache, cell_file, "unchecked_loop", 2)
    assert "KeyboardInterrupt: unchecked_loop() in <C++ cell" in out, out
    assert "by force at a second Ctrl-C" in out and "restart" in out, out
    assert "destroyed: 0" in out


def _processes_mentioning(text: str) -> dict[int, str]:
    """{pid: command line} of the processes whose command line contains `text`."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue
        if text in command:
            found[int(entry.name)] = command
    return found


SLOW_CELL = ("constexpr long spin(long n) { long s = 0; for (long i = 0; i < n; ++i) "
             "s += i % 7; return s; }\n"
             "static_assert(spin(2000000000L) > 0, \"slow\");\n"
             "int fine() { return 1; }\n")


def test_ctrl_c_during_a_build_kills_its_compilers(tmp_path):
    """SIGINT while g++ compiles a slow cell: KeyboardInterrupt in the child, no g++ or
    cc1plus of that build left running, no staging folder left; the next build works."""
    cache = tmp_path / "cache"
    script = textwrap.dedent(f"""
        import polymagic as pm
        flags = "-fconstexpr-loop-limit=2147483647 -fconstexpr-ops-limit=2147483647"
        try:
            pm.cpp({SLOW_CELL!r}, compile_args=flags)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
        print("next:", pm.cpp("int two() {{ return 2; }}").two(), flush=True)
    """)
    environment = dict(os.environ, POLYMAGIC_CACHE_DIR=str(cache),
                       POLYMAGIC_PROGRESS_DELAY="1000")
    process = subprocess.Popen([sys.executable, "-c", script], env=environment, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while not any("cc1plus" in command and "cell_module.cpp" in command
                      for command in _processes_mentioning(str(cache)).values()):
            assert time.monotonic() < deadline and process.poll() is None, \
                "the slow cell's compiler never started"
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
        left = _processes_mentioning(str(cache))
    finally:
        process.kill()
        for pid in _processes_mentioning(str(cache)):  # if the test failed: no orphans
            os.kill(pid, signal.SIGKILL)
    assert process.returncode == 0, err[-5000:]
    assert out.split("\n")[:2] == ["interrupted", "next: 2"], out + err
    assert left == {}, left
    assert not [name for name in os.listdir(cache) if name.startswith(".cpp_")]


def test_deeply_nested_expression_is_read_without_crashing(tmp_path):
    """An expression of 50,000 terms (valid C++) no longer overflows libclang's stack:
    polymagic's signature reader returns the cell's function, in a child that must
    survive (it died with SIGSEGV). Only the reading is run: g++ itself takes minutes
    over such an expression, so the full build would not fit in the suite."""
    script = textwrap.dedent("""
        from polymagic.bridges.cpp import signatures
        from polymagic.toolchain import compiler
        source = ("double f(double x) { return " + "+".join(["x"] * 50_000) + "; }\\n"
                  "int ok() { return 1; }\\n")
        plan = signatures.parse(source, signatures.clang_args(compiler("c++"), "c++17"))
        print("functions:", [f["name"] for f in plan["functions"]], plan["parse_errors"])
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300, env=dict(os.environ,
                                                  POLYMAGIC_CACHE_DIR=str(tmp_path)))
    assert result.returncode == 0, (result.returncode, result.stderr[-3000:])
    assert "functions: ['f', 'ok'] []" in result.stdout, result.stdout


def test_a_statement_too_deep_to_parse_is_a_compile_error(private_cache):
    """A statement with more operators than the parser's stack can follow is refused
    with a CompileError at its line, before libclang sees it."""
    import polymagic as pm
    source = "int ok() { return 1; }\ndouble f(double x) {\n  return " + \
        "+".join(["x"] * 1_000_002) + ";\n}\n"
    with pytest.raises(CompileError, match="more than 1,000,000 operators") as info:
        pm.cpp(source)
    assert info.value.lines == [3]


def test_sanitizer_that_would_end_the_process_is_refused(cache, cell_file):
    """-c=-fsanitize=address (and in --link-args) would abort the process when the cell
    loads (ASan must be loaded first): refused with CppOptionError before building."""
    out = survived(run(cache, cell_file, """
        for flags in ({"compile_args": "-fsanitize=address"},
                      {"compile_args": "-fsanitize=address",
                       "link_args": "-fsanitize=address"}):
            try:
                pm.cpp("int f() { return 1; }", **flags)
            except Exception as error:
                print(type(error).__name__, "LD_PRELOAD" in str(error))
    """))
    assert out.count("CppOptionError True") == 2, out


@pytest.fixture(scope="module")
def ip(tmp_path_factory):
    pytest.importorskip("IPython", reason="IPython is not installed")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("POLYMAGIC_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        from IPython.testing.globalipapp import get_ipython
        shell = get_ipython()
        shell.run_line_magic("load_ext", "polymagic")
        yield shell


MALFORMED = {
    "unbalanced double quote": '-c "-DX=1',
    "unbalanced single quote": "-c '-DX=1",
    "not a standard": "--std c++99x",
    "an empty standard": '--std ""',
    "C++98 (the generated code needs C++11)": "--std c++98",
    "a sanitizer needing a preloaded runtime": "-c=-fsanitize=address",
    "a module name that is no identifier": "-n 3x",
    "a module name that hides numpy": "-n numpy",
    "a module name that hides __builtins__": "-n __builtins__",
    "an unknown flag": "--no-such-flag",
    "an option without its value": "--std",
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_option_line_is_a_usage_error(ip, case):
    """Every malformed %%cpp option line is IPython's UsageError naming the problem,
    and the magic works afterwards."""
    from IPython.core.error import UsageError
    with pytest.raises(UsageError) as info:
        ip.run_cell_magic("cpp", MALFORMED[case], "int f() { return 1; }")
    assert str(info.value)
    if "sanitizer" in case or "standard" in case or "C++98" in case:
        assert isinstance(info.value, CppOptionError)
    ip.run_cell_magic("cpp", "", "int after_bad_options() { return 7; }")
    assert ip.user_ns["after_bad_options"]() == 7


def test_standard_the_compiler_rejects_is_a_compile_error(ip):
    """A --std that looks like one but the compiler does not know (c++0z) gives the
    compiler's own message as a CompileError, not libclang's internal exception."""
    with pytest.raises(CompileError, match="unrecognized command-line option.*c\\+\\+0z"):
        ip.run_cell_magic("cpp", "--std c++0z", "int f() { return 1; }")


def test_lone_surrogate_is_a_clear_error_naming_the_magic(ip):
    """A lone surrogate in a %%cpp cell (it cannot be written as UTF-8 for the compiler)
    is a UsageError naming %%cpp, the line and the column; the magic works after."""
    from IPython.core.error import UsageError
    with pytest.raises(UsageError, match=r"%%cpp.*'\\ud800' at line 2, column 27"):
        ip.run_cell_magic("cpp", "", "int f() { return 1; }\n"
                          "const char* g() { return \"\ud800\"; }\n")
    ip.run_cell_magic("cpp", "", "int after_surrogate() { return 8; }")
    assert ip.user_ns["after_surrogate"]() == 8


def test_lone_surrogate_in_pm_cpp_is_a_compile_error_at_its_line(private_cache):
    """pm.cpp() with a lone surrogate raises CompileError at the cell line and column,
    naming the entry point, before anything is built."""
    import polymagic as pm
    with pytest.raises(CompileError, match=r"pm.cpp.*'\\ud800'.*UTF-8") as info:
        pm.cpp("int f() { return 1; }\nconst char* g() { return \"\ud800\"; }\n")
    assert info.value.lines == [2] and "cell:2:27" in str(info.value)


def test_unreadable_plan_is_rebuilt_with_a_warning(cache, cell_file):
    """A plan.json that is not JSON, with an integrity record that agrees (written so,
    not damaged later), is dropped with a DamagedCacheEntry warning and rebuilt; never
    a raw JSONDecodeError. A plan lacking its parts is treated the same way."""
    import hashlib
    import json
    survived(run(cache, cell_file, ""))
    for broken in (b"{not json", b'{"functions": []}'):
        for plan in cache.glob("cpp_*/plan.json"):
            plan.write_bytes(broken)
            record = plan.parent / "integrity.json"
            files = json.loads(record.read_text())
            files["files"]["plan.json"] = [len(broken), hashlib.sha256(broken).hexdigest()]
            record.write_text(json.dumps(files))
        result = run(cache, cell_file, "", env={"PYTHONWARNINGS": "always"})
        survived(result)
        assert "DamagedCacheEntry" in result.stderr and "plan.json is unusable" in \
            result.stderr, result.stderr
        assert "Traceback" not in result.stderr, result.stderr


KERNEL_CELL = r"""%%cpp
#include <polymagic.hpp>
long checked_loop() {
    volatile long x = 0;
    for (long i = 0; ; ++i) { if (i % 4096 == 0) pm::check_interrupt(); x = x + 1; }
}
long unchecked_loop() { volatile long x = 0; for (;;) x = x + 1; }
int ok(int x) { return x + 1; }
"""


def test_interrupt_button_stops_cpp_in_a_jupyter_kernel(tmp_path):
    """In a real Jupyter kernel (which puts Python's SIGINT handler back before every
    cell), the Interrupt button stops a checking loop at once and a loop that never
    checks at the second press; the kernel answers the next cell each time."""
    from jupyter_client.manager import start_new_kernel
    env = dict(os.environ, POLYMAGIC_CACHE_DIR=str(tmp_path),
               POLYMAGIC_PROGRESS_DELAY="1000")
    manager, client = start_new_kernel(kernel_name="python3", env=env)

    def execute(code: str, presses: int = 0) -> dict:
        msg_id = client.execute(code)
        for _ in range(presses):
            time.sleep(1.0)
            manager.interrupt_kernel()
        while True:
            reply = client.get_shell_msg(timeout=300)
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply["content"]
    try:
        assert execute("%load_ext polymagic")["status"] == "ok"
        assert execute(KERNEL_CELL)["status"] == "ok"
        for _ in range(2):
            stopped = execute("checked_loop()", presses=1)
            assert (stopped["status"], stopped["ename"]) == ("error", "KeyboardInterrupt")
            assert execute("assert ok(1) == 2")["status"] == "ok"
        forced = execute("unchecked_loop()", presses=2)
        assert (forced["status"], forced["ename"]) == ("error", "KeyboardInterrupt")
        assert "by force at a second Ctrl-C" in forced["evalue"]
        assert execute("assert ok(2) == 3")["status"] == "ok"
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
