"""`%%julia` and `%julia`: parse options, call polymagic.bridges.julia, display.

    %%julia -i x -o y          push Python `x`, run the cell, pull Julia `y`
    %julia -i x sum(x)         line form: options first, then Julia code verbatim
    %julia -- -x               `--` ends the options (for code that starts with '-')
"""
from __future__ import annotations

from IPython.core.error import UsageError
import weakref

from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments

from .shared import check_text, io_arguments, lookup_inputs, name_pairs, parse_options

# Options that take a value: the next word is theirs, not the start of the code.
_VALUE_OPTIONS = {"-i", "--input", "-o", "--output"}


def split_line(line: str) -> tuple[str, str]:
    """'-i x --copy sum(x)' -> ('-i x --copy', 'sum(x)'): options, then code verbatim
    (the code is not re-tokenised, so Julia quotes, `'` adjoints and spaces survive)."""
    position, expects_value = 0, False
    while position < len(line):
        while position < len(line) and line[position].isspace():
            position += 1
        end = position
        while end < len(line) and not line[end].isspace():
            end += 1
        word = line[position:end]
        if not word:
            break
        if not expects_value and word == "--":  # explicit end of options
            return line[:position].strip(), line[end:].strip()
        if not expects_value and not _looks_like_option(word):
            break
        expects_value = not expects_value and word in _VALUE_OPTIONS
        position = end
    return line[:position].strip(), line[position:].strip()


def _looks_like_option(word: str) -> bool:
    """'-i', '--copy' are options; '-1' is code. Code starting '-x' needs `--` first."""
    return word.startswith("-") and len(word) > 1 and not word[1].isdigit()


def _engine():
    from ..bridges.julia import julia
    return julia


MISSING_JULIA = (
    "Julia is not available on this machine, so the Julia cells of this session are "
    "skipped (--skip-if-missing). To run them, install Julia 1.10 or later (juliaup: "
    "curl -fsSL https://install.julialang.org | sh) or set PYTHON_JULIAPKG_EXE to a julia "
    "executable, then restart the kernel.")


@magics_class
class JuliaMagics(Magics):
    """Julia cells running in this process through juliacall, arrays shared as views."""

    def __init__(self, shell=None, **kwargs):
        super().__init__(shell, **kwargs)
        self._told_missing = weakref.WeakSet()  # engines whose absence was reported

    @magic_arguments()
    @io_arguments
    @argument("--skip-if-missing", action="store_true", default=False,
              help="Where no Julia runtime exists, skip the cell instead of raising "
                   "BridgeUnavailable, saying so once per session (for notebooks shared "
                   "with such machines).")
    @line_cell_magic
    @no_var_expand  # `$x` and `{x}` are Julia syntax (interpolation, type parameters)
    def julia(self, line: str, cell: str | None = None):
        """Run Julia code in the embedded Julia session (module Main).

        Cell form: the line holds options, the cell is Julia code. Line form: options,
        then Julia code. The value of the last expression is returned unless the code
        ends with ';'. Julia's printed output appears in the cell output; `display(x)`
        of rich values shows inline.
        """
        __tracebackhide__ = True  # IPython leaves the magic's own frames out of tracebacks
        label = "%%julia" if cell is not None else "%julia"
        check_text(label, option_line=line, cell=cell)
        options, code = (line, cell) if cell is not None else split_line(line)
        args = parse_options(label, self.julia, options)
        inputs = lookup_inputs(args.input, self.shell.user_ns, "Julia")
        outputs = name_pairs(args.output)
        copy = True if args.copy else None
        if not code.strip() and not outputs and not inputs:
            raise UsageError("%julia: no Julia code given")
        engine = _engine()
        if args.skip_if_missing and not engine.available():
            if engine not in self._told_missing:
                self._told_missing.add(engine)
                print(MISSING_JULIA)
            return None
        engine.start()
        engine.enable_ipython_display()
        for julia_name, value in inputs.items():
            engine.assign(julia_name, value, copy=copy, shared_writes=args.shared_writes)
        value = engine.eval(code, filename=self._cell_filename(), copy=copy) \
            if code.strip() else None
        for python_name, julia_name in outputs:
            if julia_name not in engine:
                raise UsageError(f"-o {julia_name}: Julia has no global named "
                                 f"{julia_name!r} to return to Python")
            self.shell.user_ns[python_name] = engine.get(julia_name, copy=copy)
        if code.rstrip().endswith(";"):
            return None
        return value

    def _cell_filename(self) -> str:
        """'In[7]', as IPython numbers cells, so Julia stack traces name the cell."""
        count = getattr(self.shell, "execution_count", None)
        return f"In[{count}]" if count is not None else "In[?]"

