"""Errors reach the user without polymagic's own frames: the user's code, the foreign
diagnostic and the foreign frames, in IPython and in a plain script's traceback."""
import os
import re
import subprocess
import sys
import textwrap
import traceback

import pytest

import polymagic
from polymagic import tracebacks
from polymagic.tracebacks import entry_point, hide_plumbing

PACKAGE_DIR = os.path.dirname(polymagic.__file__)
# A traceback line naming a file of the package: "File "/.../polymagic/x.py", line 3"
# (Python) or "File /.../polymagic/x.py:3" (IPython).
POLYMAGIC_FRAME = re.compile(r'File "?' + re.escape(PACKAGE_DIR + os.sep))

# name -> (IPython cells, plain-script statement, texts the traceback must show)
CASES = {
    "cpp-compile-error": (
        ["%%cpp\nint broken(int x) { return x + ; }"],
        'pm.cpp("int broken(int x) { return x + ; }")',
        ["CompileError", "expected primary-expression"]),
    "cython-compile-error": (
        ["%%cython\ndef broken(int x):\n    return x +"],
        'pm.cython("def broken(int x):\\n    return x +\\n")',
        ["CompileError", "Expected an identifier or literal"]),
    "cpp-exception": (
        ['%%cpp\n#include <stdexcept>\n'
         'int half(int x) { if (x % 2) throw std::invalid_argument("odd"); return x / 2; }',
         "half(3)"],
        'pm.cpp("#include <stdexcept>\\nint half(int x) { if (x % 2) throw '
        'std::invalid_argument(\\"odd\\"); return x / 2; }").half(3)',
        ["CppValueError", "odd", "<C++ cell"]),
    "r-error": (
        ["%%R\nfails <- function() stop('boom')\nfails()"],
        "pm.R.eval(\"fails <- function() stop('boom')\\nfails()\")",
        ["RError", "boom", "<R c", "in fails"]),  # <R cell n> in IPython, <R code k> in a script
    "r-name-error": (
        ["pm.R['no_such_variable_here']"],
        "pm.R['no_such_variable_here']",
        ["RNameError", "no_such_variable_here"]),
    "r-conversion-error": (
        ["thing = object()", "%%R -i thing\nthing"],
        "pm.R['thing'] = object()",
        ["ConversionError", "object"]),
    "python-error-through-r": (
        ["pm.R.eval('function(f) f()')(lambda: 1 / 0)"],
        "pm.R.eval('function(f) f()')(lambda: 1 / 0)",
        ["ZeroDivisionError", "1 / 0"]),
    "julia-unavailable": (
        ["%%julia\n1 + 1"],
        'pm.julia.eval("1 + 1")',
        ["BridgeUnavailable", "Julia"]),
}

SEPARATOR = "=== case "

IPYTHON_SCRIPT = """
import sys
from IPython.testing.globalipapp import start_ipython
from IPython.utils.capture import capture_output
ip = start_ipython()
ip.run_cell("%load_ext polymagic")
ip.run_cell("import polymagic as pm")
for name, cells in CASES:
    with capture_output() as captured:
        for cell in cells:
            result = ip.run_cell(cell)
    print("{separator}" + name)
    print(captured.stdout + captured.stderr)
"""

PLAIN_CASE = """
print("{separator}{name}")
try:
    {statement}
except BaseException:
    traceback.print_exc(file=sys.stdout)
"""


def _plain_script(cases) -> str:
    """A script that runs each case's statement and prints its traceback."""
    return "import sys\nimport traceback\nimport polymagic as pm\n" + "".join(
        PLAIN_CASE.format(separator=SEPARATOR, name=name, statement=statement)
        for name, statement in cases)


def _run(script: str, tmp_path) -> dict:
    """Run `script` (written to user_script.py) in a fresh process; output per case."""
    env = dict(os.environ, POLYMAGIC_CACHE_DIR=str(tmp_path / "cache"),
               PYTHON_JULIAPKG_EXE=str(tmp_path / "no-julia-here"))
    path = tmp_path / "user_script.py"
    path.write_text(script)
    done = subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                          env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    parts = done.stdout.split(SEPARATOR)[1:]
    return dict(part.split("\n", 1) for part in parts)


@pytest.fixture(scope="module")
def shown(tmp_path_factory):
    """What IPython and a plain script print for every case (two fresh processes)."""
    tmp_path = tmp_path_factory.mktemp("clean-errors")
    ipython = f"CASES = {[(name, case[0]) for name, case in CASES.items()]!r}\n" + \
        IPYTHON_SCRIPT.format(separator=SEPARATOR)
    plain = _plain_script([(name, case[1]) for name, case in CASES.items()])
    return {"ipython": _run(ipython, tmp_path), "script": _run(plain, tmp_path)}


@pytest.mark.parametrize("where", ["ipython", "script"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_error_shows_user_code_and_diagnostic_without_polymagic_frames(shown, where, case):
    """The traceback names the error and the foreign diagnostic, starts in the user's
    code, and holds no frame of polymagic's own files."""
    text = shown[where][case]
    for expected in CASES[case][2]:
        assert expected in text, text
    user_code = "Cell In[" if where == "ipython" else 'user_script.py", line'
    assert user_code in text, text
    assert not POLYMAGIC_FRAME.search(text), text


# ---------------------------------------------------------------------------------
# The rule, on frames that live in the package directory (compiled with its paths)

def _plumbing(source: str) -> dict:
    """Functions compiled as if from a file of polymagic (what is_plumbing judges by)."""
    namespace = {}
    exec(compile(textwrap.dedent(source), os.path.join(PACKAGE_DIR, "_plumbing_test.py"),
                 "exec"), namespace)
    return namespace


PLUMBING = _plumbing("""
    from polymagic.errors import ConversionError

    def convert(value):
        raise ConversionError(f"cannot convert {value!r}")

    def crash(value):
        return value.no_such_attribute

    def call_back(function):
        return function()

    def raise_from_internal(value):
        try:
            {}[value]
        except KeyError as missing:
            raise ConversionError(f"no {value!r}") from missing

    def rename(function):
        try:
            return function()
        except ZeroDivisionError:
            raise ValueError("renamed")
""")


def _user_callback():
    return 1 / 0


def _names(error: BaseException) -> list[str]:
    return [entry.name for entry in traceback.extract_tb(error.__traceback__)]


def test_entry_point_drops_plumbing_and_itself():
    """A polymagic error leaving an entry point keeps only the user's frame."""
    convert = entry_point(PLUMBING["convert"])
    with pytest.raises(polymagic.ConversionError) as caught:
        convert(3)
    assert _names(caught.value) == ["test_entry_point_drops_plumbing_and_itself"]


def test_user_frames_inside_plumbing_are_kept():
    """The user's callback, called by plumbing, stays in the traceback; plumbing goes."""
    call_back = entry_point(PLUMBING["call_back"])
    with pytest.raises(ZeroDivisionError) as caught:
        call_back(_user_callback)
    assert _names(caught.value) == ["test_user_frames_inside_plumbing_are_kept",
                                    "_user_callback"]


def test_a_crash_inside_polymagic_keeps_its_frames():
    """An error that broke out of polymagic's code without a raise statement is a bug:
    its frames stay, so the report says where."""
    crash = entry_point(PLUMBING["crash"])
    with pytest.raises(AttributeError) as caught:
        crash(3)
    assert "crash" in _names(caught.value)


def test_chained_causes_and_contexts_are_cleaned():
    """The cause of a polymagic error and the context of a renamed one lose plumbing
    frames too."""
    with pytest.raises(polymagic.ConversionError) as caught:
        entry_point(PLUMBING["raise_from_internal"])("key")
    assert isinstance(caught.value.__cause__, KeyError)
    assert "raise_from_internal" not in _names(caught.value.__cause__)
    with pytest.raises(ValueError) as renamed:
        entry_point(PLUMBING["rename"])(_user_callback)
    assert _names(renamed.value.__context__) == ["_user_callback"]
    assert "rename" not in _names(renamed.value)


def test_keyboard_interrupt_is_cleaned():
    """Ctrl-C can land anywhere in plumbing; it is never shown as polymagic's bug."""
    def interrupted():
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt) as caught:
        entry_point(PLUMBING["call_back"])(interrupted)
    assert _names(caught.value)[-1] == "interrupted"
    assert "call_back" not in _names(caught.value)


def test_hide_plumbing_leaves_a_clean_traceback_unchanged():
    """An error with no plumbing frames keeps its very traceback object."""
    try:
        _user_callback()
    except ZeroDivisionError as error:
        before = error.__traceback__
        assert hide_plumbing(error).__traceback__ is before


def test_class_decoration_wraps_public_methods_and_dunders_once():
    """A decorated class has its public methods, __call__ and item access wrapped; the
    private ones and __init__ are not; decorating again wraps nothing twice."""
    class Engine:
        def __init__(self):
            pass

        def eval(self):
            pass

        def _private(self):
            pass

        def __getitem__(self, name):
            pass

    entry_point(Engine)
    first = Engine.eval
    entry_point(Engine)
    assert Engine.eval is first and first.__wrapped__.__name__ == "eval"
    assert hasattr(Engine.__getitem__, "__wrapped__")
    assert not hasattr(Engine._private, "__wrapped__")
    assert not hasattr(Engine.__init__, "__wrapped__")


def test_plumbing_rule_is_the_shared_one():
    """The rule used here is tracebacks.is_plumbing (one definition of polymagic's
    machinery): the package directory is plumbing, this test file is not."""
    assert tracebacks.is_plumbing(os.path.join(PACKAGE_DIR, "build.py"))
    assert not tracebacks.is_plumbing(__file__)
