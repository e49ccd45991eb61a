"""Fixtures of the Julia room's tests: an environment where no Julia can be found."""
import sys

import pytest

JULIA_VARIABLES = (
    "PYTHON_JULIAPKG_EXE", "PYTHON_JULIAPKG_PROJECT", "PYTHON_JULIAPKG_OFFLINE",
    "PYTHON_JULIACALL_EXE", "PYTHON_JULIACALL_PROJECT", "PYTHON_JULIACALL_BINDIR",
    "PYTHON_JULIACALL_LIB", "PYTHON_JULIACALL_HANDLE_SIGNALS",
    "PYTHON_JULIACALL_AUTOLOAD_IPYTHON_EXTENSION", "POLYMAGIC_JULIA_AUTOINSTALL",
    "JULIA_DEPOT_PATH", "JULIAUP_DEPOT_PATH")


@pytest.fixture
def no_julia_env(tmp_path, monkeypatch):
    """An environment where no Julia can be found: empty PATH and HOME, no Julia
    variables or -X options, juliaup's and juliapkg's folders empty under tmp_path."""
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    for variable in JULIA_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(sys, "_xoptions", {})
    monkeypatch.setenv("PATH", str(empty_bin))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("JULIAUP_DEPOT_PATH", str(tmp_path / "juliaup-depot"))
    monkeypatch.setenv("PYTHON_JULIAPKG_PROJECT", str(tmp_path / "julia_env"))
    return tmp_path
