"""IPython magics: parse options, call the library, display. No language logic here.

One module per language (r, julia, cpp, cython); the options every language shares
(`-i`, `-o`, `--copy`) are declared once in `shared`.
"""
from __future__ import annotations

import importlib

from ..progress import whole_cell
from ..tracebacks import entry_point

# module -> Magics class name; imported only by %load_ext, never by `import polymagic`.
_MAGIC_CLASSES = {
    "polymagic.magics.r": "RMagics",
    "polymagic.magics.julia": "JuliaMagics",
    "polymagic.magics.cpp": "CppMagics",
    "polymagic.magics.cython": "CythonMagics",
}


def _magic_classes():
    for module_name, class_name in _MAGIC_CLASSES.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as missing:
            if missing.name != module_name:  # a real import failure inside the module
                raise
            continue  # that language's magics are not written yet
        yield _prepared(getattr(module, class_name))


def _prepared(magic_class):
    """`magic_class` with each cell magic owning its cell (a build's progress display
    may then clear it, polymagic.progress) and each magic an entry point (its errors
    reach the notebook without polymagic's frames, polymagic.tracebacks). Done once."""
    if "_polymagic_prepared" not in vars(magic_class):
        for method_name in set(magic_class.magics.get("cell", {}).values()):
            setattr(magic_class, method_name, whole_cell(vars(magic_class)[method_name]))
        entry_point(magic_class)
        magic_class._polymagic_prepared = True
    return magic_class


def register(ipython) -> None:
    """Register every language's magics with `ipython`; starts no runtime.

    The shell's user namespace becomes the one every language reaches (polymagic.hub).
    """
    from ..hub import set_ipython_namespace
    set_ipython_namespace(ipython.user_ns)
    for magic_class in _magic_classes():
        ipython.register_magics(magic_class(ipython))


def unregister(ipython) -> None:
    """Remove polymagic's magics from `ipython`."""
    from ..hub import set_ipython_namespace
    set_ipython_namespace(None)
    magics = ipython.magics_manager.magics
    for magic_class in _magic_classes():
        for kind in ("line", "cell"):
            for name in magic_class.magics.get(kind, {}):
                # only ours: %R may belong to rpy2's magic, loaded after polymagic
                owner = getattr(magics[kind].get(name), "__self__", None)
                if isinstance(owner, magic_class):
                    del magics[kind][name]
