"""`%%cpp`: compile a C++ cell and bind its top-level functions and classes in the user
namespace."""
from __future__ import annotations

import importlib.util
import keyword

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from ..errors import CppOptionError, also
from .shared import check_text, parse_options


@magics_class
class CppMagics(Magics):
    """The C++ cell magic; all behaviour lives in polymagic.bridges.cpp."""

    @magic_arguments()
    @argument("-c", "--compile-args", action="append", default=[], metavar="FLAGS",
              help="Extra compiler flags (repeatable; quoted strings are split).")
    @argument("--link-args", action="append", default=[], metavar="FLAGS",
              help="Extra linker flags (repeatable; quoted strings are split).")
    @argument("-l", dest="libraries", action="append", default=[], metavar="LIB",
              help="Link with library LIB (repeatable).")
    @argument("-L", dest="library_dirs", action="append", default=[], metavar="DIR",
              help="Search DIR for libraries (repeatable).")
    @argument("-I", dest="include_dirs", action="append", default=[], metavar="DIR",
              help="Search DIR for headers (repeatable).")
    @argument("--std", default=None, help="C++ standard (default c++20).")
    @argument("-O", dest="optimize", default="2", metavar="LEVEL",
              choices=["0", "1", "2", "3", "s", "fast", "g"],
              help="Optimisation level: 0, 1, 2, 3, s, fast (default 2).")
    @argument("-n", "--name", default=None,
              help="Also bind the module object under this name.")
    @argument("-f", "--force", action="store_true", default=False,
              help="Rebuild even if the cell is in the build cache.")
    @argument("--verbose", action="store_true", default=False,
              help="Print the compiler and linker commands and their output.")
    @cell_magic
    def cpp(self, line: str, cell: str) -> None:
        """Compile the cell as C++; every top-level function becomes a Python callable,
        every class or struct (top level or in a namespace) a Python class: methods,
        fields, operators, overloads; Python subclasses may override virtual methods.

        Arrays pass as zero-copy views (T*, const T*, std::span<T>), returned
        std::vector<T> become NumPy arrays owning the vector's memory, Python callables
        pass as function pointers or std::function; other standard containers (vector
        parameters, map, pair, tuple, optional) convert as copies. C++20 unless --std.
        See `python -m polymagic help cpp`.
        """
        __tracebackhide__ = True  # IPython leaves the magic's own frames out of tracebacks
        from ..bridges.cpp import CppOptions, load

        check_text("%%cpp", option_line=line, cell=cell)
        args = _parse(self.cpp, line)
        try:
            options = CppOptions.make(args.compile_args, args.link_args, args.libraries,
                                      args.library_dirs, args.include_dirs, args.std,
                                      args.optimize, args.name, args.force, args.verbose)
        except CppOptionError as error:
            raise also(error, UsageError) from None
        module = load(cell, options)
        namespace = self.shell.user_ns
        for export in module.__exports__:
            namespace[export] = getattr(module, export)
        for path in getattr(module, "__classes__", {}):  # classes; namespaces as objects
            top = path.partition(".")[0]
            namespace[top] = getattr(module, top)
        if args.name:
            namespace[args.name] = module


def _parse(magic, line: str):
    """The magic's options; every malformed line (unbalanced quotes included) and a
    -n that is no name of its own is a UsageError."""
    args = parse_options("%%cpp", magic, line)
    name = args.name
    if name is not None and (not name.isidentifier() or keyword.iskeyword(name)):
        raise UsageError(f"%%cpp -n {name!r}: the module is bound under this name, so it "
                         f"must be a Python identifier")
    if name is not None and (name == "__builtins__" or _importable(name)):
        raise UsageError(f"%%cpp -n {name!r}: a module named {name!r} can be imported; "
                         f"binding the cell under that name would hide it. Pick another")
    return args


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False
