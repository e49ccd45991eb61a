"""%%julia and %julia: option parsing and error display (no Julia needed), and -i/-o
views, output, display and errors through a real kernel-less IPython shell (needs Julia).
"""
import numpy as np
import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from polymagic.bridges.julia import locate as julia_locate
from polymagic.bridges.julia import JuliaBridge
from polymagic.errors import BridgeUnavailable, JuliaError
from polymagic.magics import julia as julia_magics
from polymagic.magics.julia import split_line

NO_JULIA_REASON = "no Julia runtime found (set PYTHON_JULIAPKG_EXE)"
needs_julia = pytest.mark.skipif(julia_locate.find_julia() is None, reason=NO_JULIA_REASON)


@pytest.fixture(scope="module")
def ip():
    """An IPython shell with polymagic loaded."""
    from IPython.testing.globalipapp import get_ipython
    shell = get_ipython()  # the one test shell (start_ipython returns None twice)
    shell.run_line_magic("load_ext", "polymagic")
    return shell


@pytest.fixture
def unavailable_engine(no_julia_env, monkeypatch):
    """The magics talk to a fresh engine in an environment with no Julia anywhere."""
    engine = JuliaBridge()
    monkeypatch.setattr(julia_magics, "_engine", lambda: engine)
    return engine


@pytest.mark.parametrize("line, expected", [
    ("-i x --copy sum(x)", ("-i x --copy", "sum(x)")),
    ("1 + 2", ("", "1 + 2")),
    ("-i x -o y", ("-i x -o y", "")),
    ("x'", ("", "x'")),
    ('println("a  b")', ("", 'println("a  b")')),
    ("-1 + 2", ("", "-1 + 2")),
    ("-i x -- -x", ("-i x", "-x")),
], ids=["options+code", "code", "options", "adjoint", "spaces-in-string", "negative",
        "double-dash"])
def test_line_is_split_into_options_and_verbatim_code(line, expected):
    """%julia's line: leading options go to the parser, the rest is Julia code untouched."""
    assert split_line(line) == expected


def test_magics_are_registered_with_their_options(ip):
    """%julia and %%julia exist and their help lists -i, -o and --copy."""
    assert "julia" in ip.magics_manager.magics["line"]
    assert "julia" in ip.magics_manager.magics["cell"]
    doc = ip.magics_manager.magics["cell"]["julia"].__doc__
    assert "--input" in doc and "--output" in doc and "--copy" in doc


@pytest.mark.parametrize("run", [
    lambda ip: ip.run_cell_magic("julia", "--bogus", "1"),
    lambda ip: ip.run_line_magic("julia", "--bogus 1"),
], ids=["cell", "line"])
def test_bad_option_is_a_usage_error_naming_it(ip, run, unavailable_engine):
    """An unknown option is a UsageError that names it (checked before Julia is needed)."""
    with pytest.raises(UsageError, match="--bogus"):
        run(ip)


def test_unknown_input_name_is_a_usage_error(ip, unavailable_engine):
    """-i with a name missing from the namespace is a UsageError naming it."""
    ip.user_ns.pop("not_defined_here", None)
    with pytest.raises(UsageError, match="not_defined_here"):
        ip.run_cell_magic("julia", "-i not_defined_here", "1")


def test_missing_julia_is_shown_to_the_user(ip, unavailable_engine):
    """Without Julia, a %%julia cell fails with BridgeUnavailable whose advice is displayed,
    and the shell keeps working."""
    with capture_output() as captured:
        result = ip.run_cell("%%julia\n1 + 1")
    assert isinstance(result.error_in_exec, BridgeUnavailable)
    assert "PYTHON_JULIAPKG_EXE" in captured.stdout and "juliaup" in captured.stdout
    assert ip.run_cell("21 * 2").result == 42


def test_skip_if_missing_says_so_once_and_skips(ip, unavailable_engine):
    """With --skip-if-missing and no Julia, the first cell says Julia is absent and how to
    get it, later cells skip silently, none fails, and the engine is never started."""
    with capture_output() as first:
        result = ip.run_cell("%%julia --skip-if-missing\n1 + 1")
    assert result.error_in_exec is None and result.result is None
    assert first.stdout.count("Julia is not available on this machine") == 1
    assert "PYTHON_JULIAPKG_EXE" in first.stdout and "docs/" not in first.stdout
    with capture_output() as later:
        for source in ("%%julia --skip-if-missing\n2 + 2", "%julia --skip-if-missing 3"):
            assert ip.run_cell(source).error_in_exec is None
    assert later.stdout == ""
    assert not unavailable_engine.is_started()


def test_dollar_and_braces_reach_julia_unexpanded(ip, unavailable_engine):
    """%julia is no_var_expand: IPython does not replace `$name` by Python's value (Julia
    interpolates `$name` itself); here `-i $jl_name` stays a bad name instead of
    becoming the Python variable the expansion would name."""
    ip.user_ns["jl_name"] = "not_defined_anywhere"
    with pytest.raises(UsageError) as info:
        ip.run_line_magic("julia", "-i $jl_name 1")
    assert "$jl_name" in str(info.value)
    with pytest.raises(UsageError, match="no Python variable named 'not_defined_anywhere'"):
        ip.run_line_magic("julia", "-i not_defined_anywhere 1")  # what expansion gave


# -- real Julia --------------------------------------------------------------------------

@needs_julia
def test_inputs_are_read_only_views_and_outputs_views(ip):
    """-i pushes a numpy array as a read-only view: a write in the cell is a JuliaError
    (MethodError) and the array is unchanged; -o pulls the same memory back."""
    x = np.arange(4.0)
    ip.user_ns["x"] = x
    ip.run_cell_magic("julia", "-i x -o y", "y = x")
    assert np.shares_memory(ip.user_ns["y"], x)
    with capture_output():
        result = ip.run_cell("%%julia -i x\nx[1] = 10.0")
    assert isinstance(result.error_in_exec, JuliaError)
    assert result.error_in_exec.julia_type == "MethodError"
    assert x[0] == 0.0


@needs_julia
def test_shared_writes_let_the_cell_write(ip):
    """With --shared-writes, -i x is a Julia Vector on the array's memory and the cell's
    write is seen in Python."""
    x = np.arange(4.0)
    ip.user_ns["x"] = x
    ip.run_cell_magic("julia", "--shared-writes -i x -o is_vector",
                      "x[1] = 10.0\nis_vector = x isa Vector{Float64}")
    assert x[0] == 10.0 and ip.user_ns["is_vector"] is True


@needs_julia
def test_dollar_interpolation_is_julias(ip):
    """`$name` in a %julia line is Julia's string interpolation, not IPython's."""
    ip.user_ns["name"] = "Python"
    assert ip.run_line_magic("julia", 'name = "Julia"; "hello $name"') == "hello Julia"


@needs_julia
def test_copy_option_copies(ip):
    """--copy pushes a copy (a Julia Array the cell may write): the writes do not reach
    the Python array, and -o y is Julia's memory."""
    x = np.arange(3.0)
    ip.user_ns["x"] = x
    ip.run_cell_magic("julia", "-i x --copy -o y", "x[1] = 5.0\ny = x")
    assert x[0] == 0.0 and not np.shares_memory(ip.user_ns["y"], x)


@needs_julia
def test_line_magic_returns_the_value(ip):
    """%julia code returns the value; a trailing ';' returns nothing."""
    ip.user_ns["x"] = np.arange(5.0)
    assert ip.run_line_magic("julia", "-i x sum(x)") == 10.0
    assert ip.run_line_magic("julia", "1 + 1;") is None


@needs_julia
def test_julia_output_appears_in_the_cell_output(ip):
    """println in a cell shows in the cell's output."""
    with capture_output() as captured:
        ip.run_cell('%%julia\nprintln("printed by julia")')
    assert "printed by julia" in captured.stdout


@needs_julia
def test_display_of_rich_values_is_inline(ip):
    """display(HTML(...)) in Julia publishes text/html to IPython."""
    with capture_output() as captured:
        ip.run_cell('%%julia\ndisplay(HTML("<b>bold from julia</b>"))')
    assert any("bold from julia" in output.data.get("text/html", "")
               for output in captured.outputs)


@needs_julia
def test_julia_error_is_shown_with_the_cell_line(ip):
    """A Julia error in a cell raises JuliaError naming the cell line; the next cell works."""
    with capture_output() as captured:
        result = ip.run_cell('%%julia\nok = 1\nerror("cell failure")')
    assert isinstance(result.error_in_exec, JuliaError)
    assert result.error_in_exec.line == 2
    assert "cell failure" in captured.stdout
    assert ip.run_line_magic("julia", "ok + 1") == 2


@needs_julia
def test_unknown_output_name_is_a_usage_error(ip):
    """-o naming a Julia global that does not exist is a UsageError naming it, found
    after the cell ran (only then is it known which globals the cell made)."""
    with pytest.raises(UsageError, match="never_assigned"):
        ip.run_cell_magic("julia", "-o never_assigned", "1")
