"""`%%cython`: the options of Cython's own magic, built by polymagic.bridges.cython.

Existing cells run unchanged; unlike Cython's magic, a failed build raises CompileError
(with cell line numbers) instead of printing and returning None.
"""
from __future__ import annotations

from IPython.core import magic_arguments
from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, magics_class

from ..errors import CythonOptionError, also
from .shared import check_text, parse_options


@magics_class
class CythonMagics(Magics):
    """Registers `%%cython`."""

    @magic_arguments.magic_arguments()
    @magic_arguments.argument(
        "-a", "--annotate", action="store_const", const="default", dest="annotate",
        help="Show Cython's annotated HTML of the cell (Python interaction in yellow).")
    @magic_arguments.argument(
        "--annotate-fullc", action="store_const", const="fullc", dest="annotate",
        help="Like --annotate, with the entire generated C/C++ code.")
    @magic_arguments.argument(
        "-+", "--cplus", action="store_true", default=False,
        help="Generate and compile C++ instead of C.")
    @magic_arguments.argument(
        "-3", dest="language_level", action="store_const", const=3, default=None,
        help="Python 3 syntax (the default).")
    @magic_arguments.argument(
        "-2", dest="language_level", action="store_const", const=2, default=None,
        help="Python 2 syntax.")
    @magic_arguments.argument(
        "-f", "--force", action="store_true", default=False,
        help="Build a new module even if this cell was built before.")
    @magic_arguments.argument(
        "-c", "--compile-args", action="append", default=[],
        help="Extra compiler flags (repeatable; one value may hold several flags).")
    @magic_arguments.argument(
        "--link-args", action="append", default=[],
        help="Extra linker flags (repeatable).")
    @magic_arguments.argument(
        "-l", "--lib", action="append", default=[],
        help="Link against a library (repeatable).")
    @magic_arguments.argument(
        "-n", "--name", help="The name of the built module.")
    @magic_arguments.argument(
        "-L", dest="library_dirs", metavar="dir", action="append", default=[],
        help="Add a library directory (repeatable).")
    @magic_arguments.argument(
        "-I", "--include", action="append", default=[],
        help="Add an include directory, for C headers and .pxd files (repeatable).")
    @magic_arguments.argument(
        "-S", "--src", action="append", default=[],
        help="Add a C/C++ source file to compile with the cell (repeatable).")
    @magic_arguments.argument(
        "--pgo", action="store_true", default=False,
        help="Profile-guided optimisation (GCC): the cell's module-level code, run in a "
             "child process, is the training workload; then the cell is rebuilt with "
             "the profile.")
    @magic_arguments.argument(
        "--verbose", action="store_true", default=False,
        help="Print the compiler command, its full output and the cache entry.")
    @cell_magic
    def cython(self, line, cell):
        """Compile a Cython cell, load it, and bind its public names in the namespace.

        The public names are those in the module's `__all__`, else every name not
        starting with an underscore (as Cython's %%cython does). With -a, the annotated
        HTML is the cell's result.
        """
        __tracebackhide__ = True  # IPython leaves the magic's own frames out of tracebacks
        from ..bridges import cython as bridge
        args = _parse(self.cython, line, cell)
        try:
            result = bridge.build(
                cell, annotate=args.annotate, cplus=args.cplus,
                language_level=args.language_level or 3, compile_args=args.compile_args,
                link_args=args.link_args, libraries=args.lib,
                library_dirs=args.library_dirs, include_dirs=args.include,
                sources=args.src, name=args.name, pgo=args.pgo, force=args.force,
                verbose=args.verbose)
        except CythonOptionError as error:  # a bad -n, -c, -S ... value
            error.args = (f"%%cython: {error}",)
            raise also(error, UsageError) from None
        self.shell.push(public_names(result.module))
        if result.annotation_html is not None:
            from IPython.display import HTML
            return HTML(result.annotation_html)
        return None


def _parse(magic, line: str, cell: str):
    """The magic's options. Every malformed line (unbalanced quotes included) is a
    UsageError, and so is text that cannot be encoded (a lone surrogate) in the line
    or the cell, named by its place."""
    check_text("%%cython", option_line=line, cell=cell)
    return parse_options("%%cython", magic, line)


def public_names(module) -> dict:
    """{name: value} a `from module import *` would bind."""
    namespace = vars(module)
    exported = namespace.get("__all__")
    if exported is None:
        exported = [name for name in namespace if not name.startswith("_")]
    missing = [name for name in exported if name not in namespace]
    if missing:
        raise UsageError(f"the Cython cell's __all__ names {missing}, which it does not "
                         "define")
    return {name: namespace[name] for name in exported}
