"""Cython's compiler run on one cell's .pyx: a request in, plain facts out (both JSON),
so the same function runs in this process or in the warm Cython server (server.py)."""
from __future__ import annotations

from .toolchain import CYTHON_LOCK


def compiler_is_warm() -> bool:
    """Cython's compiler has run in this process: a further run takes milliseconds."""
    return _WARM[0]


_WARM = [False]


def run_cython(request: dict) -> dict:
    """Run Cython on `request["pyx"]` (absolute path) as module `request["name"]`.

    The request holds `cplus`, `language_level`, `annotate`, `shared_utility` (the
    shared utility module's name, or None for inline utility code) and `include_path`
    (absolute). The reply says whether Cython reported errors (its listing file,
    next to the .pyx, has them), the C file, whether the cell cimported numpy, and
    whether it needs utility code written in Cython (the memoryview machinery); or
    `crash`, the text of a Cython crash.
    """
    with CYTHON_LOCK:
        from Cython.Compiler import Errors
        from Cython.Compiler.Main import (CompilationOptions, Context, compile_single,
                                          default_options)
        from Cython.Compiler.UtilityCode import (CythonSharedUtilityCode,
                                                   CythonUtilityCode)
        from Cython.Utils import clear_function_caches
        clear_function_caches()  # file lookups: a .pxd written since the last cell is seen
        options = CompilationOptions(
            default_options, cplus=request["cplus"],
            language_level=request["language_level"], annotate=request["annotate"],
            emit_linenums=True, use_listing_file=True, errors_to_stderr=False,
            shared_utility_qualified_name=request["shared_utility"],
            include_path=request["include_path"])
        context = Context.from_options(options)
        try:
            result = compile_single(request["pyx"], options, request["name"],
                                    context=context)
        except (Errors.PyrexError, Errors.InternalError, Errors.AbortError) as crash:
            return {"crash": f"Cython failed: {crash}"}
        finally:
            _WARM[0] = True
        scope = context.modules.get(request["name"])
        return {
            "errors": bool(result.num_errors or not result.c_file),
            "c_file": result.c_file,
            # Cython records every module the cell cimports (directly or through a .pxd).
            "numpy_used": "numpy" in context.modules,
            # Utility code written in Cython (the memoryview machinery) is what makes a
            # cell's C large; Cython queues it on the module scope while analysing.
            "uses_cython_utility": scope is not None and any(
                isinstance(code, (CythonUtilityCode, CythonSharedUtilityCode))
                for code in scope.utility_code_list),
        }
