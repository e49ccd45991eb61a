"""`%%julia` and `%julia`: parse options, call polymagic.bridges.julia, display.

    %%julia -i x -o y          push Python `x`, run the cell, pull Julia `y`
    %julia -i x sum(x)         line form: options first, then Julia code verbatim
    %julia -- -x               `--` ends the options (for code that starts with '-')
"""
from __future__ import annotations

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from .shared import io_arguments, lookup_inputs, name_pairs

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


def _julia_available() -> bool:
    from ..bridges.julia.locate import find_julia
    return find_julia() is not None


def _engine():
    from ..bridges.julia import julia
    return julia


@magics_class
class JuliaMagics(Magics):
    """Julia cells running in this process through juliacall, arrays shared as views."""

    @magic_arguments()
    @io_arguments
    @argument("--skip-if-missing", action="store_true", default=False,
              help="Where no Julia runtime exists, say so and skip the cell instead of "
                   "raising BridgeUnavailable (for notebooks shared with such machines).")
    @line_cell_magic
    def julia(self, line: str, cell: str | None = None):
        """Run Julia code in the embedded Julia session (module Main).

        Cell form: the line holds options, the cell is Julia code. Line form: options,
        then Julia code. The value of the last expression is returned unless the code
        ends with ';'. Julia's printed output appears in the cell output; `display(x)`
        of rich values shows inline.
        """
        __tracebackhide__ = True  # IPython leaves the magic's own frames out of tracebacks
        options, code = (line, cell) if cell is not None else split_line(line)
        args = parse_argstring(self.julia, options)
        inputs = lookup_inputs(args.input, self.shell.user_ns, "Julia")
        outputs = name_pairs(args.output)
        copy = True if args.copy else None
        if not code.strip() and not outputs and not inputs:
            raise UsageError("%julia: no Julia code given")
        engine = _engine()
        if args.skip_if_missing and not _julia_available():
            print("Julia is not available on this machine, so this Julia cell was "
                  "skipped (see docs/julia.md: set PYTHON_JULIAPKG_EXE or install "
                  "juliaup).")
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

