"""The machinery behind %%cpp: signatures (libclang), code generation, build, loading.

`polymagic.bridges.cpp.cpp()` is the public entry point; these modules are its parts:
`types` (the type table), `signatures` (libclang -> exported functions), `codegen`
(extern "C" trampolines and the cffi glue), `build` (compiler runs), `callbacks`
(Python callables as C function pointers, exceptions across the boundary) and
`module` (the module-like object a cell becomes).
"""
