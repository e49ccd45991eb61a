"""`%%R` and `%R`: parse the options (rpy2's, so existing cells run unchanged), call
polymagic.bridges.r, display plots. No R logic here; importing this starts no R."""
from __future__ import annotations

from collections import ChainMap

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, needs_local_scope
from IPython.core.magic_arguments import (argument, argument_group, magic_arguments,
                                          parse_argstring)

from .shared import io_arguments, lookup_inputs, name_pairs


@magics_class
class RMagics(Magics):
    """R in the same process: `%%R` runs a cell like R's console, `%R` returns a value."""

    @magic_arguments()
    @io_arguments
    @argument("-n", "--noreturn", action="store_true", default=False,
              help="Return nothing (line mode returns the last value otherwise).")
    @argument("-c", "--converter", default=None,
              help="Accepted for rpy2 compatibility only: polymagic converts with "
                   "polymagic.marshal.r; naming an rpy2 converter is an error.")
    @argument("-d", "--display", default=None, metavar="FUNCTION",
              help="Name of a Python function called as FUNCTION(value, args) with "
                   "the cell's last visible value instead of printing it.")
    @argument_group("Plot", "Arguments to the plotting device")
    @argument("-w", "--width", type=float, help="Plot width (in --units).")
    @argument("-h", "--height", type=float, help="Plot height (in --units).")
    @argument("-u", "--units", choices=["px", "in", "cm", "mm"],
              help="Units of width and height (px by default for png, in for svg).")
    @argument("-r", "--res", type=int, help="Resolution in ppi (72 when units != px).")
    @argument("-p", "--pointsize", type=int, help="Point size of plot text.")
    @argument("-b", "--bg", help="Plot background colour.")
    @argument("--type", choices=["cairo", "cairo-png", "Xlib", "quartz"],
              help="png device type, passed to R's png().")
    @argument("--format", choices=["png", "svg"], default="png", dest="format",
              help="Image format of inline plots (png by default).")
    @argument("--png", action="store_const", const="png", dest="format",
              help="Same as --format png.")
    @argument("--svg", action="store_const", const="svg", dest="format",
              help="Same as --format svg.")
    @argument("--noisolation", action="store_false", default=True, dest="isolate",
              help="Do not isolate SVG figures in the notebook (rpy2's option).")
    @argument("code", nargs="*", help="R code (line mode, or prepended to the cell).")
    @needs_local_scope
    @line_cell_magic
    def R(self, line, cell=None, local_ns=None):
        """Run R code in this process. Arrays in -i/-o cross as views of one memory."""
        __tracebackhide__ = True  # IPython leaves the magic's own frames out of tracebacks
        args = self._parse(line)
        code = " ".join(args.code)
        if cell is not None:
            code = f"{code}\n{cell}" if code else cell
        namespace = ChainMap(local_ns or {}, self.shell.user_ns)
        display_function = self._display_function(args, namespace)
        copy = True if args.copy else None
        self._push_inputs(args, namespace, copy)
        result = self._run(code, args, line_mode=cell is None,
                           print_last=display_function is None)
        self._pull_outputs(args, copy)
        if display_function is not None and result.visible:
            display_function(self._convert(result.value, copy), args)
            return None
        if cell is None and not args.noreturn and result.value is not None:
            return self._convert(result.value, copy)
        return None

    def _parse(self, line: str):
        args = parse_argstring(self.R, line)  # a bad option is a UsageError
        if args.converter is not None:
            raise UsageError(
                f"-c/--converter {args.converter}: polymagic converts values with its "
                "own rules (polymagic.marshal.r, arrays as views); rpy2 converters "
                "are not used. Drop -c, or convert in Python before -i.")
        if args.format == "svg" and args.type is not None:
            raise UsageError("--type chooses a png device; it does not apply to --svg")
        return args

    def _display_function(self, args, namespace):
        if args.display is None:
            return None
        if args.display not in namespace:
            raise UsageError(f"-d {args.display}: no Python function named "
                             f"{args.display!r}")
        function = namespace[args.display]
        if not callable(function):
            raise UsageError(f"-d {args.display}: {type(function).__name__} is not "
                             "callable")
        return function

    def _push_inputs(self, args, namespace, copy) -> None:
        from ..bridges.r import R
        for r_name, value in lookup_inputs(args.input, namespace, "R").items():
            R.assign(r_name, value, copy=copy, shared_writes=args.shared_writes)

    def _run(self, code: str, args, *, line_mode: bool, print_last: bool):
        __tracebackhide__ = True  # IPython leaves the magic's own frames out of tracebacks
        from ..bridges.r import R
        from ..bridges.r.graphics import RGraphics
        from ..errors import GraphicsOptionError
        try:
            graphics = RGraphics(args.format, width=args.width, height=args.height,
                                 units=args.units, res=args.res,
                                 pointsize=args.pointsize, bg=args.bg, type=args.type)
        except GraphicsOptionError as error:
            raise UsageError(str(error)) from error
        filename = f"<R cell {self.shell.execution_count}>"
        try:
            with graphics:
                return R.run_cell(code, filename=filename, print_visible=not line_mode,
                                  print_last=print_last)
        finally:
            self._show_plots(graphics, args)

    def _show_plots(self, graphics, args) -> None:
        from IPython.display import SVG, Image, display
        inline = self._in_kernel()
        for page in graphics.pages:
            if graphics.format == "svg":
                metadata = {"image/svg+xml": {"isolated": True}} if args.isolate else {}
                display(SVG(filename=str(page)), metadata=metadata)
            else:
                display(Image(filename=str(page)))
        if graphics.pages and not inline:
            # a terminal shows no images: keep the files and say where they are
            print("R plots saved: " + ", ".join(str(page) for page in graphics.pages))
        else:
            graphics.discard()

    def _in_kernel(self) -> bool:
        return getattr(self.shell, "kernel", None) is not None

    def _pull_outputs(self, args, copy) -> None:
        from ..bridges.r import R
        for python_name, r_name in name_pairs(args.output):
            try:
                value = R.get(r_name, copy=copy)
            except KeyError as missing:
                raise UsageError(f"-o {r_name}: R has no variable named {r_name!r} "
                                 "after the cell ran") from missing
            self.shell.user_ns[python_name] = value

    @staticmethod
    def _convert(value, copy):
        from ..bridges.r import R
        return R.to_python(value, copy=copy)
