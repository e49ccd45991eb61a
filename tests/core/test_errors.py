"""Errors name the language, the foreign message, the stack and the cell line."""
import pytest

from polymagic.errors import (BridgeUnavailable, CompileError, ConversionError, CopyRequired,
                              RError, PolymagicError)


def test_foreign_error_renders_language_line_and_stack():
    """A foreign error's text shows the language, cell line with excerpt, and the stack."""
    error = RError("object 'y' not found", stack=["f(1)", "g()"], line=2,
                   source="x <- 1\ny + 1\nz")
    text = str(error)
    assert text.startswith("R error (cell line 2): object 'y' not found")
    assert "-->    2 | y + 1" in text
    assert "  f(1)\n  g()" in text


def test_bridge_unavailable_is_an_import_error_with_a_fix():
    """BridgeUnavailable is an ImportError and says how to fix it."""
    error = BridgeUnavailable("Julia", "no julia found", "install juliaup")
    assert isinstance(error, ImportError) and isinstance(error, PolymagicError)
    assert str(error) == "Julia is not available: no julia found\ninstall juliaup"


@pytest.mark.parametrize("builtin", [ValueError, TypeError])
def test_copy_required_is_a_value_and_type_error(builtin):
    """copy=False failures can be caught as ValueError or TypeError (a ConversionError),
    and keep their message."""
    with pytest.raises(builtin) as caught:
        raise CopyRequired("C-ordered matrix cannot cross as a view")
    assert type(caught.value) is CopyRequired
    assert isinstance(caught.value, ConversionError)
    assert str(caught.value) == "C-ordered matrix cannot cross as a view"


def test_compile_error_lists_cell_lines():
    """CompileError names the language and the cell lines of its diagnostics."""
    error = CompileError("C++", "cell:3:5: error: expected ';'", lines=[3, 3])
    assert str(error).startswith("C++ compilation failed at cell line 3:")
