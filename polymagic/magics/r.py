"""`%%R`, `%R`, `%Rpush`, `%Rpull`, `%Rget` and `%Rdevice`, with rpy2's options and
semantics, so notebooks written for rpy2's magic run unchanged on polymagic's R.

Parse, call polymagic.bridges.r, display: no R logic here, and importing this starts no
R and imports no rpy2. Values follow rpy2's magic conventions (a length-1 R vector
arrives as a 1-element array, a uniform list leaves as an atomic vector:
polymagic.marshal.r_rpy2); numeric arrays still cross as views. R errors are also
rpy2's exception classes (polymagic.bridges.r.rpy2_compat). Whichever of rpy2's magic
and polymagic is loaded last owns these names; both use the same embedded R.
"""
from __future__ import annotations

import sys
from collections import ChainMap

from IPython.core.error import UsageError
from IPython.core.magic import (Magics, line_cell_magic, line_magic, magics_class,
                                needs_local_scope, no_var_expand)
from IPython.core.magic_arguments import argument, argument_group, magic_arguments

from ..errors import ConversionError, GraphicsOptionError, RNameError, also
from .shared import (check_text, find_python, input_triples, io_arguments, name_pairs,
                     parse_options)

DEVICES = ("png", "svg")
_RPY2_ONLY_DEVICES = {
    "jpeg": "polymagic draws png or svg; use %Rdevice png",
    "X11": "polymagic draws into files shown in the notebook, not into an X11 window"}
_MAGIC_NAMES = "%%R, %R, %Rpush, %Rpull, %Rget and %Rdevice"
# Whether rpy2's magic was last seen owning those names (%reload_ext polymagic removes
# them before polymagic registers again, so the shell alone cannot tell).
_last_seen = {"rpy2_owns": False}


def _converter_argument(function):
    return argument(
        "-c", "--converter", default=None,
        help="Accepted for rpy2 compatibility only: polymagic converts with "
             "polymagic.marshal.r_rpy2; naming an rpy2 converter is an error.")(function)


def _copy_argument(function):
    return argument("--copy", action="store_true", default=False,
                    help="Copy arrays instead of sharing their memory.")(function)


@magics_class
class RMagics(Magics):
    """R in the same process: `%%R` runs a cell like R's console, `%R` returns a value,
    `%Rpush` / `%Rpull` / `%Rget` move variables, `%Rdevice` picks the plot format."""

    def __init__(self, shell):
        super().__init__(shell)
        self.device = "png"
        self._cell_sources: dict[str, str] = {}
        if shell is not None:
            owner = shell.magics_manager.magics["cell"].get("R")
            if _is_rpy2_magic(owner) or (owner is None and _last_seen["rpy2_owns"]):
                print(f"polymagic: {_MAGIC_NAMES} now run through polymagic, replacing "
                      f"rpy2's magic (both use the same R).")
            _last_seen["rpy2_owns"] = False
            shell.events.register("post_run_cell", self._notice_replacement)

    # ---- %R / %%R ---------------------------------------------------------------------

    @magic_arguments()
    @io_arguments
    @argument("-n", "--noreturn", action="store_true", default=False,
              help="Return nothing (line mode returns the last value otherwise).")
    @_converter_argument
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
    @argument("--format", choices=list(DEVICES), default=None, dest="format",
              help="Image format of inline plots (%%Rdevice's choice, png at first).")
    @argument("--png", action="store_const", const="png", dest="format",
              help="Same as --format png.")
    @argument("--svg", action="store_const", const="svg", dest="format",
              help="Same as --format svg.")
    @argument("--noisolation", action="store_false", default=True, dest="isolate",
              help="Do not isolate SVG figures in the notebook (rpy2's option).")
    @argument("code", nargs="*", help="R code (line mode, or prepended to the cell).")
    @needs_local_scope
    @line_cell_magic
    @no_var_expand  # R's `x$a` and `py$f` reach R as written
    def R(self, line, cell=None, local_ns=None):
        """Run R code in this process. Arrays in -i/-o cross as views of one memory."""
        __tracebackhide__ = True  # IPython leaves the magic's own frames out of tracebacks
        check_text("%%R" if cell is not None else "%R", option_line=line, cell=cell)
        args = self._parse(self.R, line)
        code = " ".join(args.code)
        if cell is not None:
            code = f"{code}\n{cell}" if code else cell
        namespace = ChainMap(local_ns or {}, self.shell.user_ns)
        display_function = self._display_function(args, namespace)
        copy = True if args.copy else None
        self._push(input_triples(args.input, namespace, "R"), copy, args.shared_writes)
        result = self._run(code, args, line_mode=cell is None,
                           print_last=display_function is None)
        for python_name, r_name in name_pairs(args.output):
            self.shell.user_ns[python_name] = self._pull(r_name, copy, "-o")
        if display_function is not None and result.visible:
            display_function(self._convert(result.value, copy), args)
            return None
        # rpy2: a trailing ';' returns nothing, and so does NULL
        if cell is None and not args.noreturn and not code.rstrip().endswith(";"):
            return self._convert(result.value, copy)
        return None

    def _parse(self, magic, line: str):
        args = parse_options(f"%{magic.__name__}", magic, line)
        if args.converter is not None:
            raise UsageError(
                f"-c/--converter {args.converter}: polymagic converts values with its "
                "own rules (polymagic.marshal.r_rpy2, arrays as views); rpy2 converters "
                "are not used. Drop -c, or convert in Python before -i.")
        return args

    def _display_function(self, args, namespace):
        if args.display is None:
            return None
        function = find_python(args.display, namespace, None, "-d")
        if not callable(function):
            raise UsageError(f"-d {args.display}: {type(function).__name__} is not "
                             "callable")
        return function

    def _push(self, triples, copy, shared_writes, option: str = "-i") -> None:
        __tracebackhide__ = True
        from ..bridges.r import R
        from ..marshal import r_rpy2
        for r_name, python_name, value in triples:
            try:
                R.assign(r_name, r_rpy2.to_r(value, copy=copy,
                                             shared_writes=shared_writes))
            except ConversionError as error:  # name the variable (the class stays)
                error.args = (f"{option} {python_name}: {error}", *error.args[1:])
                raise

    def _pull(self, r_name: str, copy, option: str):
        """R's `r_name` in rpy2's conventions; a missing name is an RNameError (a
        KeyError, as rpy2's lookup raises) that is also a UsageError."""
        __tracebackhide__ = True
        from ..bridges.r import R
        try:
            sexp = R.find(r_name)
        except RNameError:
            raise also(RNameError(f"{option} {r_name}: R has no variable named "
                                  f"{r_name!r}"), UsageError) from None
        try:
            return self._convert(sexp, copy)
        except ConversionError as error:
            error.args = (f"{option} {r_name}: {error}", *error.args[1:])
            raise

    @staticmethod
    def _convert(value, copy):
        from ..marshal import r_rpy2
        return None if value is None else r_rpy2.to_python(value, copy=copy)

    def _run(self, code: str, args, *, line_mode: bool, print_last: bool):
        __tracebackhide__ = True  # IPython leaves the magic's own frames out of tracebacks
        from ..bridges.r import R
        from ..bridges.r.graphics import RGraphics
        plot_format = args.format or self.device
        if plot_format == "svg" and args.type is not None:
            raise UsageError("--type chooses a png device; it does not apply to svg plots")
        try:
            graphics = RGraphics(plot_format, width=args.width,
                                 height=args.height, units=args.units, res=args.res,
                                 pointsize=args.pointsize, bg=args.bg, type=args.type)
        except GraphicsOptionError as error:
            raise UsageError(str(error)) from error
        try:
            with graphics:
                return R.run_cell(code, filename=self._cell_name(code),
                                  print_visible=not line_mode, print_last=print_last)
        finally:
            self._show_plots(graphics, args)

    def _cell_name(self, code: str) -> str | None:
        """`<R cell n>`, n being the notebook's In [n] of the cell holding this code;
        a second R snippet in the same cell gets `<R cell n (2)>`, and so on. None when
        no notebook cell is on the stack (the magic was called from Python code): the
        engine then names the code, and R warnings point at that Python code."""
        number = self._cell_number()
        if number is None:
            return None
        name, suffix = f"<R cell {number}>", 2
        while self._cell_sources.get(name, code) != code:
            name, suffix = f"<R cell {number} ({suffix})>", suffix + 1
        self._cell_sources[name] = code
        return name

    def _cell_number(self) -> int | None:
        """In [n] of the innermost notebook cell on the stack: the cell that holds the
        magic's code, also when a function defined there runs later. (IPython's own
        map from cell file names to In [n]; its execution_count may already be n+1.)"""
        numbers = getattr(self.shell.compile, "_filename_map", {})
        frame = sys._getframe(1)
        while frame is not None:
            number = numbers.get(frame.f_code.co_filename)
            if number is not None:
                return number
            frame = frame.f_back
        return None

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

    # ---- %Rpush / %Rpull / %Rget ------------------------------------------------------

    @magic_arguments()
    @_converter_argument
    @_copy_argument
    @argument("--shared-writes", action="store_true", default=False,
              help="Let R write into the pushed arrays (see %%R --shared-writes).")
    @argument("inputs", nargs="*",
              help="Python names (or dotted paths), 'rname=pyname' to rename.")
    @needs_local_scope
    @line_magic
    def Rpush(self, line, local_ns=None):
        """Push Python variables into R's global environment: `%Rpush x y`.
        Arrays cross as views; a uniform list becomes an atomic vector."""
        __tracebackhide__ = True
        args = self._parse(self.Rpush, line)
        namespace = ChainMap(local_ns or {}, self.shell.user_ns)
        self._push(input_triples(args.inputs, namespace, "R", "%Rpush"),
                   True if args.copy else None, args.shared_writes, "%Rpush")

    @magic_arguments()
    @_copy_argument
    @argument("outputs", nargs="*", help="R names, 'pyname=rname' to rename.")
    @line_magic
    def Rpull(self, line):
        """Pull R variables into the notebook's namespace: `%Rpull x y`. Numeric
        vectors arrive as views of R's memory; a length-1 vector as a 1-element array."""
        __tracebackhide__ = True
        args = parse_options("%Rpull", self.Rpull, line)
        copy = True if args.copy else None
        for python_name, r_name in name_pairs(args.outputs):
            self.shell.user_ns[python_name] = self._pull(r_name, copy, "%Rpull")

    @magic_arguments()
    @_copy_argument
    @argument("output", nargs=1, help="An R name.")
    @line_magic
    def Rget(self, line):
        """Return an R variable's value (as %Rpull converts it) instead of assigning it:
        `df = %Rget df`."""
        __tracebackhide__ = True
        args = parse_options("%Rget", self.Rget, line)
        return self._pull(args.output[0], True if args.copy else None, "%Rget")

    # ---- %Rdevice ---------------------------------------------------------------------

    @line_magic
    def Rdevice(self, line):
        """Choose the format of inline plots for the next cells: `%Rdevice png` or
        `%Rdevice svg` (rpy2's jpeg and X11 are not available)."""
        device = line.strip()
        if device in DEVICES:
            self.device = device
            return
        reason = _RPY2_ONLY_DEVICES.get(
            device, f"use one of {', '.join(DEVICES)}")
        raise also(GraphicsOptionError(f"%Rdevice {device!r}: {reason}"), UsageError)

    # ---- sharing %%R with rpy2's magic ------------------------------------------------

    def _notice_replacement(self, *_) -> None:
        """After each cell: if rpy2's magic has taken %%R over, say so once and stop
        watching (also stop, silently, once another polymagic instance has it)."""
        owner = self.shell.magics_manager.magics["cell"].get("R")
        if getattr(owner, "__self__", None) is self:
            return
        self.shell.events.unregister("post_run_cell", self._notice_replacement)
        if _is_rpy2_magic(owner):
            _last_seen["rpy2_owns"] = True
            print(f"polymagic: {_MAGIC_NAMES} now run through rpy2's magic, loaded "
                  f"last (both use the same R); %reload_ext polymagic takes them back.")


def _is_rpy2_magic(function) -> bool:
    owner = getattr(function, "__self__", None)
    return owner is not None and type(owner).__module__.startswith("rpy2.")
