"""Settings read from POLYMAGIC_* environment variables, through one helper."""
from __future__ import annotations

import os

from .errors import ConfigError

_TRUE = {"1", "yes", "true", "on"}
_FALSE = {"0", "no", "false", "off", ""}


def option(name: str, default: str | None = None, *, choices=None) -> str | None:
    """The value of POLYMAGIC_<NAME>, checked against `choices` when given."""
    variable = f"POLYMAGIC_{name.upper()}"
    value = os.environ.get(variable, default)
    if value is not None and choices is not None and value not in choices:
        raise ConfigError(
            f"environment variable {variable}={value!r} is not one of {sorted(choices)}")
    return value


def flag(name: str, default: bool = False) -> bool:
    """POLYMAGIC_<NAME> read as a yes/no switch."""
    variable = f"POLYMAGIC_{name.upper()}"
    value = os.environ.get(variable)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ConfigError(f"environment variable {variable}={value!r} is not a yes/no value "
                      f"(use one of {sorted(_TRUE | _FALSE - {''})})")
