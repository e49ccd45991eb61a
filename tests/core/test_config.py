"""POLYMAGIC_* settings are read through one helper that names bad values."""
import pytest

from polymagic.config import flag, option
from polymagic.errors import ConfigError


def test_option_rejects_values_outside_choices(monkeypatch):
    """A bad value names the variable and the allowed values."""
    monkeypatch.setenv("POLYMAGIC_PLOT_FORMAT", "gif")
    with pytest.raises(ConfigError, match="POLYMAGIC_PLOT_FORMAT='gif'.*png"):
        option("plot_format", "png", choices={"png", "svg"})


def test_flag_reads_yes_no(monkeypatch):
    """yes/no switches accept the usual spellings and reject others."""
    monkeypatch.setenv("POLYMAGIC_X", "yes")
    assert flag("x") is True
    monkeypatch.setenv("POLYMAGIC_X", "maybe")
    with pytest.raises(ConfigError, match="POLYMAGIC_X"):
        flag("x")
