"""Anchors several benchmarks build: a module bound by hand with pybind11, compiled
as its users compile it (`c++ -O2 -shared -fPIC`), and imported."""
from __future__ import annotations

import importlib.util
import subprocess
import sysconfig
import time
from pathlib import Path


def build_pybind11(directory: Path, name: str, source: str, std: str = "c++20"):
    """(module, seconds the compiler took) for C++ `source` defining PYBIND11_MODULE
    `name`."""
    import pybind11
    path = directory / f"{name}.cpp"
    path.write_text(source)
    target = directory / f"{name}{sysconfig.get_config_var('EXT_SUFFIX')}"
    command = ["c++", "-O2", "-shared", "-fPIC", f"-std={std}",
               f"-I{pybind11.get_include()}", f"-I{sysconfig.get_paths()['include']}",
               str(path), "-o", str(target)]
    started = time.perf_counter()
    subprocess.run(command, check=True)
    seconds = time.perf_counter() - started
    spec = importlib.util.spec_from_file_location(name, target)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, seconds
