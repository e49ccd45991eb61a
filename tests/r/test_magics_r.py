"""%%R and %R (polymagic.magics.r) driven through a real IPython shell and real R."""
import base64
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
