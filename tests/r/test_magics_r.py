"""%%R and %R (polymagic.magics.r) driven through a real IPython shell and real R."""
import base64
import datetime
import re
import struct
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("rpy2", reason="rpy2 is not installed (pip install 'polymagic[r]')")
pytest.importorskip("IPython", reason="IPython is not installed")

from IPython.core.error import UsageError  # noqa: E402
from IPython.utils.capture import capture_output  # noqa: E402

import polymagic as pm  # noqa: E402

IMAGE_TYPES = ["text/plain", "image/png", "image/svg+xml"]


@pytest.fixture(scope="module")
def ip(R):
    from IPython.testing.globalipapp import get_ipython
    shell = get_ipython()
    shell.run_line_magic("load_ext", "polymagic")
    # the test shell is a terminal one: let it format images so displays can be seen
    shell.display_formatter.active_types = IMAGE_TYPES
    return shell


def _png_size(data):
    """(width, height) from a PNG's IHDR (display data holds it base64-encoded)."""
    if isinstance(data, str):
        data = base64.b64decode(data)
    return struct.unpack(">II", data[16:24])


def test_input_and_output_are_views(ip):
    """-i pushes and -o pulls numpy arrays as views of the same memory."""
    ip.user_ns["x"] = np.linspace(0, 1, 1000)
    ip.run_cell_magic("R", "-i x -o y", "y <- x")
    assert np.shares_memory(ip.user_ns["y"], ip.user_ns["x"])


def test_inputs_comma_lists_and_renames(ip):
    """-i takes comma lists and rname=pyname; -o takes pyname=rname."""
    ip.user_ns.update(a=2.0, b=3.0)
    ip.run_cell_magic("R", "-i a,bee=b -o total=s", "s <- a * bee")
    assert ip.user_ns["total"] == 6.0


def test_repeated_input_option(ip):
    """-i can be given more than once."""
    ip.user_ns.update(p=1.0, q=2.0)
    assert ip.run_line_magic("R", "-i p -i q p + q") == 3.0


def test_line_magic_returns_value(ip):
    """%R returns the converted value of its last expression."""
    assert ip.run_line_magic("R", "x2 <- 21; x2 * 2") == 42


def test_noreturn(ip):
    """-n makes %R return nothing."""
    assert ip.run_line_magic("R", "-n 1 + 1") is None


def test_cell_prints_like_r_console_and_returns_nothing(ip):
    """%%R prints each visible value as R's console does and returns None."""
    with capture_output() as captured:
        result = ip.run_cell_magic("R", "", "z <- 3\nz * 2\ninvisible(7)\n'done'")
    assert result is None
    assert "[1] 6" in captured.stdout and '[1] "done"' in captured.stdout
    assert "7" not in captured.stdout


def test_code_on_the_line_is_prepended(ip):
    """Code after the options on the %%R line runs before the cell."""
    ip.run_cell_magic("R", "-o w w0 <- 10", "w <- w0 + 1")
    assert ip.user_ns["w"] == 11


def test_png_plot_displayed_with_requested_size(ip):
    """A plot appears as a PNG display of the size given by -w/-h."""
    with capture_output() as captured:
        ip.run_cell_magic("R", "-w 320 -h 240", "plot(1:10)")
    pngs = [o.data["image/png"] for o in captured.outputs if "image/png" in o.data]
    assert len(pngs) == 1
    assert _png_size(pngs[0]) == (320, 240)


def test_units_and_resolution(ip):
    """-u in -r 100 makes a 3x2 inch plot 300x200 pixels."""
    with capture_output() as captured:
        ip.run_cell_magic("R", "-w 3 -h 2 -u in -r 100", "plot(1)")
    png = next(o.data["image/png"] for o in captured.outputs if "image/png" in o.data)
    assert _png_size(png) == (300, 200)


def test_each_page_is_displayed(ip):
    """Two plots in one cell give two images."""
    with capture_output() as captured:
        ip.run_cell_magic("R", "", "plot(1)\nplot(2)")
    assert sum("image/png" in o.data for o in captured.outputs) == 2


def test_svg_plot_with_size(ip):
    """--svg shows an SVG of the requested size (inches -> 72 pt per inch)."""
    with capture_output() as captured:
        ip.run_cell_magic("R", "--svg -w 5 -h 4 -u in", "plot(1:3)")
    svgs = [o.data["image/svg+xml"] for o in captured.outputs
            if "image/svg+xml" in o.data]
    assert len(svgs) == 1
    assert 'width="360pt"' in svgs[0] and 'height="288pt"' in svgs[0]


def test_terminal_shell_says_where_plots_are(ip):
    """Outside a kernel the plot files are kept and their paths printed."""
    with capture_output() as captured:
        ip.run_cell_magic("R", "", "plot(1)")
    assert "R plots saved:" in captured.stdout


def test_no_plot_no_image(ip):
    """A cell that draws nothing displays no image."""
    with capture_output() as captured:
        ip.run_cell_magic("R", "", "1 + 1")
    assert not [o for o in captured.outputs if "image/png" in o.data]


def test_unknown_input_is_usage_error(ip):
    """-i with a name Python does not have is a UsageError naming it."""
    with pytest.raises(UsageError, match="not_defined_anywhere"):
        ip.run_cell_magic("R", "-i not_defined_anywhere", "1")


def test_bad_option_is_usage_error(ip):
    """An unknown option is a UsageError naming it."""
    with pytest.raises(UsageError, match="--bogus"):
        ip.run_cell_magic("R", "--bogus", "1")


def test_converter_option_is_refused_with_reason(ip):
    """-c cannot be honoured (polymagic converts itself): UsageError saying why."""
    with pytest.raises(UsageError, match="polymagic.marshal.r"):
        ip.run_cell_magic("R", "-c my_converter", "1")


def test_unknown_output_is_usage_error(ip):
    """-o with a name R does not have after the cell is a UsageError naming it."""
    with pytest.raises(UsageError, match="never_made"):
        ip.run_cell_magic("R", "-o never_made", "1")


def test_display_function_receives_last_value(ip):
    """-d FUNCTION is called with the last visible value instead of printing it."""
    seen = []
    ip.user_ns["show_it"] = lambda value, args: seen.append(value)
    with capture_output() as captured:
        ip.run_cell_magic("R", "-d show_it", "print('printed')\n40 + 2")
    assert seen == [42.0]
    assert "42" not in captured.stdout and "printed" in captured.stdout


def test_error_in_cell_raises_and_next_cell_works(ip):
    """An R error in a cell raises RError with the cell line; the next cell runs."""
    with pytest.raises(pm.RError) as caught:
        ip.run_cell_magic("R", "", "ok <- 1\nstop('cell failed')")
    assert caught.value.line == 2 and "cell failed" in caught.value.message
    assert ip.run_line_magic("R", "ok + 1") == 2


def test_copy_option_copies(ip):
    """--copy makes -i/-o copy instead of sharing memory."""
    ip.user_ns["c_in"] = np.arange(10.0)
    ip.run_cell_magic("R", "--copy -i c_in -o c_out", "c_out <- c_in")
    assert not np.shares_memory(ip.user_ns["c_out"], ip.user_ns["c_in"])
    np.testing.assert_array_equal(ip.user_ns["c_out"], ip.user_ns["c_in"])


def test_r_writes_reach_python_only_with_shared_writes(ip):
    """By default an R write gives R its own copy; --shared-writes lets R write into the
    NumPy array itself."""
    ip.user_ns["w_default"] = np.zeros(3)
    ip.run_cell_magic("R", "-i w_default", "w_default[1] <- 7")
    assert ip.user_ns["w_default"][0] == 0.0
    ip.user_ns["w_shared"] = np.zeros(3)
    ip.run_cell_magic("R", "--shared-writes -i w_shared", "w_shared[1] <- 7")
    assert ip.user_ns["w_shared"][0] == 7.0


def test_magics_module_imports_no_rpy2():
    """Importing polymagic.magics.r (what %load_ext does) imports no rpy2."""
    code = ("import sys, polymagic.magics.r; "
            "print(any(m.startswith('rpy2') for m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True,
                            text=True, check=True)
    assert result.stdout.strip() == "False"


def test_help_lists_rpy2_options(ip):
    """%%R's docstring (what %%R? shows) lists rpy2's options and ours."""
    doc = ip.find_cell_magic("R").__doc__
    for option in ("--input", "--output", "--noreturn", "--width", "--height",
                   "--units", "--res", "--pointsize", "--bg", "--copy", "--svg"):
        assert option in doc


# ---- rpy2's magic conventions, its other magics, its exceptions ----------------------

def test_line_magic_does_not_expand_python_variables(ip):
    """%R reaches R verbatim: `x$a` is R's list access, not Python's `a` expanded."""
    ip.user_ns["a"] = 5
    result = ip.run_cell("%R rl <- list(a = 40, b = 2); rl$a + rl$b")
    assert result.error_in_exec is None
    np.testing.assert_array_equal(result.result, [42.0])


def test_hub_reached_from_line_magic(ip):
    """`%R sum(py$arr)` reads the notebook's `arr` through the hub (no `$arr` expansion)."""
    ip.user_ns["arr"] = np.arange(4.0)
    ip.user_ns["py"] = "not the hub"  # IPython would have expanded $py or $arr
    result = ip.run_cell("%R sum(py$arr)")
    assert result.error_in_exec is None
    np.testing.assert_array_equal(result.result, [6.0])
    del ip.user_ns["py"]


def test_length_one_results_are_one_element_arrays(ip):
    """%R, -o, %Rpull, %Rget and -d give a length-1 R vector as a 1-element array
    (rpy2's conventions), so `result[0]` works; strings as numpy str arrays."""
    value = ip.run_line_magic("R", "-o one one <- 7L; one")
    assert isinstance(value, np.ndarray) and value.shape == (1,) and value[0] == 7
    assert isinstance(ip.user_ns["one"], np.ndarray) and ip.user_ns["one"].dtype == np.int32
    ip.run_line_magic("R", "word <- 'hi'")
    ip.run_line_magic("Rpull", "word")
    assert ip.user_ns["word"].dtype.kind == "U" and ip.user_ns["word"][0] == "hi"
    assert ip.run_line_magic("Rget", "one")[0] == 7
    seen = []
    ip.user_ns["keep"] = lambda value, args: seen.append(value)
    ip.run_cell_magic("R", "-d keep", "TRUE")
    assert seen[0].dtype == bool and seen[0].shape == (1,)


def test_library_keeps_its_scalar_rule(ip):
    """pm.R still returns a length-1 attribute-free vector as a Python scalar."""
    assert pm.R.eval("7L") == 7 and type(pm.R.eval("7L")) is int


def test_trailing_semicolon_returns_nothing(ip):
    """As with rpy2, `%R code;` returns None."""
    assert ip.run_line_magic("R", "semi <- 3;") is None
    assert ip.run_line_magic("R", "semi")[0] == 3


def test_uniform_list_becomes_an_atomic_vector(ip):
    """-i and %Rpush turn a uniform Python list into an R vector (rpy2's
    simplify2array), so mean(lst) works; lists of lists become matrices."""
    ip.user_ns["lst"] = [1, 2, 3.5]
    assert ip.run_line_magic("R", "-i lst class(lst)")[0] == "numeric"
    assert ip.run_line_magic("R", "mean(lst)")[0] == pytest.approx(6.5 / 3)
    ip.user_ns["words"] = ["a", "b"]
    ip.run_line_magic("Rpush", "words")
    assert list(ip.run_line_magic("R", "toupper(words)")) == ["A", "B"]
    ip.user_ns["rows"] = [[1, 2], [3, 4]]
    ip.run_line_magic("Rpush", "rows")
    assert tuple(ip.run_line_magic("R", "dim(rows)")) == (2, 2)
    ip.user_ns["mixed"] = [1, "a", None]
    ip.run_line_magic("Rpush", "mixed")
    assert ip.run_line_magic("R", "class(mixed)")[0] == "list"


def test_list_of_dates_becomes_one_date_vector(ip):
    """%Rpush of a list of dates gives one R Date vector (simplify2array would drop the
    class), None becoming NA."""
    ip.user_ns["days"] = [datetime.date(2024, 1, 1), None, datetime.date(2024, 1, 3)]
    ip.run_line_magic("Rpush", "days")
    assert ip.run_line_magic("R", "class(days)")[0] == "Date"
    assert list(ip.run_line_magic("R", "is.na(days)")) == [False, True, False]


def test_push_pull_and_get_are_views(ip):
    """%Rpush sends a float64 array as a view, %Rget/%Rpull give views back: one memory."""
    ip.user_ns["shared"] = np.linspace(0, 1, 100)
    ip.run_line_magic("Rpush", "shared")
    assert np.shares_memory(ip.run_line_magic("Rget", "shared"), ip.user_ns["shared"])
    ip.run_line_magic("R", "made <- as.numeric(1:50)")
    ip.run_line_magic("Rpull", "made")
    assert np.shares_memory(ip.user_ns["made"], ip.run_line_magic("Rget", "made"))


def test_data_frame_columns_cross_as_views(ip):
    """A float64 DataFrame column pushed with %Rpush and fetched with %Rget is the same
    memory as the original column (views both ways, as in the library)."""
    pd = pytest.importorskip("pandas")
    ip.user_ns["measures"] = pd.DataFrame({"x": np.linspace(0, 1, 50), "k": range(50)})
    ip.run_line_magic("Rpush", "measures")
    back = ip.run_line_magic("Rget", "measures")
    assert np.shares_memory(back["x"].to_numpy(), ip.user_ns["measures"]["x"].to_numpy())


def test_push_copy_option_copies(ip):
    """%Rpush --copy sends a copy."""
    ip.user_ns["own"] = np.arange(5.0)
    ip.run_line_magic("Rpush", "--copy own")
    assert not np.shares_memory(ip.run_line_magic("Rget", "own"), ip.user_ns["own"])


def test_push_renames_and_dotted_names(ip):
    """%Rpush takes rname=pyname and dotted Python paths, as rpy2 does."""
    import types
    ip.user_ns["cfg"] = types.SimpleNamespace(alpha=np.array([0.5, 0.25]))
    ip.run_line_magic("Rpush", "a2=cfg.alpha cfg.alpha")
    assert ip.run_line_magic("R", "sum(a2) + sum(cfg.alpha)")[0] == 1.5


def test_pull_renames_and_missing_names(ip):
    """%Rpull takes pyname=rname; an unknown R name is a KeyError and a UsageError."""
    ip.run_line_magic("R", "r.side <- 9")
    ip.run_line_magic("Rpull", "py_side=r.side")
    assert ip.user_ns["py_side"][0] == 9
    with pytest.raises(KeyError, match="no_such_r_thing"):
        ip.run_line_magic("Rpull", "no_such_r_thing")
    with pytest.raises(UsageError):
        ip.run_line_magic("Rget", "no_such_r_thing")


def test_push_in_a_function_uses_its_locals(ip):
    """%Rpush inside a function finds the function's local variables first."""
    ip.run_cell("def push_local(u):\n    %Rpush u\n    doubled = %R u * 2\n"
                "    return doubled\n")
    ip.run_cell("doubled = push_local(21.0)")
    assert ip.user_ns["doubled"][0] == 42.0


@pytest.mark.parametrize("line", ["-i missing_py_name 1", "-d missing_display 1"])
def test_missing_python_names_are_name_and_usage_errors(ip, line):
    """A missing -i or -d name raises MagicNameError: a NameError and a UsageError."""
    with pytest.raises(pm.errors.MagicNameError) as caught:
        ip.run_line_magic("R", line)
    assert isinstance(caught.value, NameError) and isinstance(caught.value, UsageError)
    assert "missing_" in str(caught.value)


def test_missing_push_name_is_a_name_error(ip):
    """%Rpush of an unknown name, or of a missing attribute, raises NameError."""
    with pytest.raises(NameError, match="not_here"):
        ip.run_line_magic("Rpush", "not_here")
    ip.user_ns["holder"] = object()
    with pytest.raises(NameError, match="no attribute 'inner'"):
        ip.run_line_magic("Rpush", "holder.inner")


def test_r_errors_are_also_rpy2_runtime_and_parsing_errors(ip):
    """An R error is also rpy2's RRuntimeError, a parse error also its RParsingError."""
    from rpy2.rinterface_lib._rinterface_capi import RParsingError
    from rpy2.rinterface_lib.embedded import RRuntimeError
    with pytest.raises(RRuntimeError) as caught:
        ip.run_line_magic("R", "stop('from R')")
    assert isinstance(caught.value, pm.RError) and "from R" in str(caught.value)
    with pytest.raises(RParsingError) as parsed:
        ip.run_line_magic("R", "1 +")
    assert isinstance(parsed.value, pm.RError) and isinstance(parsed.value, RRuntimeError)


def test_compatible_errors_pickle_as_polymagic_classes(ip):
    """An RError that is also rpy2's class pickles as polymagic's own RError."""
    import pickle
    with pytest.raises(pm.RError) as caught:
        ip.run_line_magic("R", "stop('pickled')")
    copy = pickle.loads(pickle.dumps(caught.value))
    assert type(copy) is pm.RError and copy.message == caught.value.message


def test_conversion_errors_name_the_variable_and_column(ip):
    """A column that cannot cross raises ConversionError naming -i's variable and the
    column; the session goes on."""
    pd = pytest.importorskip("pandas")
    ip.user_ns["frame"] = pd.DataFrame({"ok": [1.0, 2.0], "bad": [{1}, {2}]})
    with pytest.raises(pm.ConversionError, match=r"-i frame: column 'bad': .*set"):
        ip.run_cell_magic("R", "-i frame", "nrow(frame)")
    assert ip.run_line_magic("R", "1 + 1")[0] == 2


def test_dates_cross_both_ways_through_the_magic(ip):
    """datetime64, a tz-aware pandas column, dates and timedelta64 cross as POSIXct
    (with its tzone), Date and difftime, and come back equal."""
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({
        "when": pd.date_range("2024-03-30 12:00", periods=3, freq="D", tz="Europe/Paris"),
        "day": [datetime.date(2024, 1, 1), None, datetime.date(2024, 1, 3)],
        "lag": np.array([90, 3600, 5], dtype="timedelta64[s]")})
    ip.user_ns["frame"] = frame
    ip.run_cell_magic("R", "-i frame -o classes,tz,back",
                      "classes <- sapply(frame, function(col) class(col)[1])\n"
                      "tz <- attr(frame$when, 'tzone')\nback <- frame")
    assert list(ip.user_ns["classes"]) == ["POSIXct", "Date", "difftime"]
    assert ip.user_ns["tz"][0] == "Europe/Paris"
    back = ip.user_ns["back"]
    assert str(back["when"].dt.tz) == "Europe/Paris"
    assert (back["when"] == frame["when"]).all()
    assert back["day"].isna().tolist() == [False, True, False]
    assert back["day"][0] == pd.Timestamp("2024-01-01")
    ip.user_ns["stamps"] = np.array(["2024-01-01T10:00", "NaT"], dtype="datetime64[s]")
    ip.run_cell_magic("R", "-i stamps -o same", "same <- format(stamps, '%H:%M')")
    assert ip.user_ns["same"][0] == "10:00" and ip.user_ns["same"][1] is None
    assert (back["lag"] == pd.Series(frame["lag"])).all()


def test_r_warning_points_at_the_cell_line(ip):
    """An R warning from a %%R cell is attributed to `<R cell n>` (n = In [n]) at the R
    line, not to IPython's machinery."""
    import warnings
    number = ip.execution_count
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ip.run_cell("%%R\nok <- 1\nlog(-1)\n", store_history=True)
    r_warnings = [w for w in caught if issubclass(w.category, pm.errors.RWarning)]
    assert len(r_warnings) == 1
    assert re.fullmatch(rf"<R cell {number}( \(\d+\))?>", r_warnings[0].filename)
    assert r_warnings[0].lineno == 2
    assert "NaNs produced" in str(r_warnings[0].message)


def test_r_frames_carry_the_notebooks_cell_number(ip):
    """R frames in a %%R cell's traceback are named `<R cell n>` with n the In [n] the
    notebook shows; an R function from an earlier cell keeps that cell's number."""
    first = ip.execution_count
    ip.run_cell("%%R\nfails <- function() stop('deep')\n", store_history=True)
    second = ip.execution_count
    result = ip.run_cell("%%R\nx <- 1\nfails()\n", store_history=True)
    places, tb = [], result.error_in_exec.__traceback__
    while tb is not None:
        places.append(f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}")
        tb = tb.tb_next
    r_places = [place for place in places if place.startswith("<R cell")]
    assert len(r_places) == 2
    assert re.fullmatch(rf"<R cell {second}( \(\d+\))?>:2", r_places[0])
    assert re.fullmatch(rf"<R cell {first}( \(\d+\))?>:1", r_places[1])


def test_two_snippets_in_one_cell_keep_their_own_sources(ip):
    """Two %R lines in one cell get distinct names, so each R frame shows its own code."""
    import linecache
    ip.run_cell("%R snip_a <- function() stop('a')\n%R snip_b <- 2\n", store_history=True)
    result = ip.run_cell("%R snip_a()", store_history=True)
    files, tb = [], result.error_in_exec.__traceback__
    while tb is not None:
        files.append(tb.tb_frame.f_code.co_filename)
        tb = tb.tb_next
    defining = [name for name in files if name.startswith("<R cell")][-1]
    assert "snip_a <- function" in linecache.getline(defining, 1)
    names = {name for name in linecache.cache if name.startswith("<R cell")}
    snip_b = [name for name in names if "snip_b" in linecache.getline(name, 1)]
    assert len(snip_b) == 1 and snip_b[0] != defining


def test_rdevice_chooses_the_plot_format(ip):
    """%Rdevice svg makes the next cells' plots SVG; png brings PNG back; rpy2's jpeg
    and X11 and unknown devices raise a UsageError that is also a ValueError."""
    try:
        ip.run_line_magic("Rdevice", "svg")
        with capture_output() as captured:
            ip.run_cell_magic("R", "", "plot(1)")
        assert any("image/svg+xml" in o.data for o in captured.outputs)
    finally:
        ip.run_line_magic("Rdevice", "png")
    with capture_output() as captured:
        ip.run_cell_magic("R", "", "plot(1)")
    assert any("image/png" in o.data for o in captured.outputs)
    for device in ("jpeg", "X11", "bogus"):
        with pytest.raises(UsageError, match=device) as caught:
            ip.run_line_magic("Rdevice", device)
        assert isinstance(caught.value, ValueError)


def _run_child(code: str, tmp_path) -> str:
    script = tmp_path / "child.py"  # a file, not -c: R warnings find their source line
    script.write_text(code)
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_load_ext_imports_no_rpy2_and_rinterpreter_error_once_imported(tmp_path):
    """`import polymagic` and %load_ext import no rpy2 module; R errors become rpy2's
    RInterpreterError only after the user has imported rpy2's magic module."""
    out = _run_child(
        "import sys\n"
        "from IPython.testing.globalipapp import start_ipython\n"
        "ip = start_ipython()\n"
        "ip.run_line_magic('load_ext', 'polymagic')\n"
        "print('after load_ext:', sorted(m for m in sys.modules if m.startswith('rpy2')))\n"
        "try:\n    ip.run_line_magic('R', 'stop(1)')\n"
        "except Exception as e:\n    first = e\n"
        "print('magic module:', 'rpy2.ipython.rmagic' in sys.modules)\n"
        "from rpy2.ipython import rmagic\n"
        "print('before import:', isinstance(first, rmagic.RInterpreterError))\n"
        "try:\n    ip.run_line_magic('R', 'stop(2)')\n"
        "except rmagic.RInterpreterError as e:\n    print('caught:', e.err)\n", tmp_path)
    assert "after load_ext: []" in out
    assert "magic module: False" in out and "before import: False" in out
    assert "caught: 2" in out


def test_rpy2_magic_and_polymagic_share_one_r_and_say_who_owns_r(tmp_path):
    """Whichever magic is loaded last owns %%R, with one line saying so; both see the
    same R variables."""
    out = _run_child(
        "from IPython.testing.globalipapp import start_ipython\n"
        "ip = start_ipython()\n"
        "ip.run_cell('%load_ext rpy2.ipython')\n"
        "ip.run_cell('%R from_rpy2 <- 41')\n"
        "print('--- load polymagic')\n"
        "ip.run_cell('%load_ext polymagic')\n"
        "print('owner:', type(ip.find_cell_magic('R').__self__).__module__)\n"
        "ip.run_cell('seen = %R from_rpy2 + 1')\n"
        "print('seen:', ip.user_ns['seen'][0])\n"
        "ip.run_cell('%R from_polymagic <- 7')\n"
        "print('--- reload rpy2')\n"
        "ip.run_cell('%reload_ext rpy2.ipython')\n"
        "print('owner:', type(ip.find_cell_magic('R').__self__).__module__)\n"
        "ip.run_cell('seen2 = %R from_polymagic')\n"
        "print('seen2:', ip.user_ns['seen2'][0])\n"
        "ip.run_cell('1 + 1')\n"
        "print('--- reload polymagic')\n"
        "ip.run_cell('%reload_ext polymagic')\n"
        "print('owner:', type(ip.find_cell_magic('R').__self__).__module__)\n", tmp_path)
    before, after_load = out.split("--- load polymagic")
    loaded, reloaded = after_load.split("--- reload rpy2")
    reloaded, taken_back = reloaded.split("--- reload polymagic")
    assert "now run through polymagic, replacing rpy2's magic" in loaded
    assert "owner: polymagic.magics.r" in loaded and "seen: 42.0" in loaded
    assert reloaded.count("now run through rpy2's magic") == 1
    assert "owner: rpy2.ipython.rmagic" in reloaded and "seen2: 7.0" in reloaded
    assert "now run through polymagic, replacing rpy2's magic" in taken_back
    assert "owner: polymagic.magics.r" in taken_back


def test_unloading_polymagic_leaves_rpy2s_magic_in_place(tmp_path):
    """%unload_ext polymagic removes only polymagic's magics: an %R that rpy2's magic
    took over afterwards stays rpy2's."""
    out = _run_child(
        "from IPython.testing.globalipapp import start_ipython\n"
        "ip = start_ipython()\n"
        "ip.run_cell('%load_ext polymagic')\n"
        "ip.run_cell('%load_ext rpy2.ipython')\n"
        "ip.run_cell('%unload_ext polymagic')\n"
        "print('owner:', type(ip.find_cell_magic('R').__self__).__module__)\n"
        "print('cpp:', ip.find_cell_magic('cpp'))\n", tmp_path)
    assert "owner: rpy2.ipython.rmagic" in out
    assert "cpp: None" in out
