"""Capture what R draws while a cell runs: one file per page, PNG or SVG.

    with RGraphics(format="png", width=600, height=400) as graphics:
        R.run_cell("plot(1:10)")
    graphics.pages  # [Path('.../Rplot001.png')]

A file device is opened in a fresh temporary directory before the cell runs and closed
after it (even when the cell fails), so every page the cell drew is a complete file.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from ...errors import GraphicsOptionError

FORMATS = ("png", "svg")
UNITS = ("px", "in", "cm", "mm")
_PER_INCH = {"in": 1.0, "cm": 2.54, "mm": 25.4}


class RGraphics:
    """A context manager opening an R file device for the duration of a cell."""

    def __init__(self, format: str = "png", *, width: float | None = None,
                 height: float | None = None, units: str | None = None,
                 res: int | None = None, pointsize: int | None = None,
                 bg: str | None = None, type: str | None = None):
        if format not in FORMATS:
            raise GraphicsOptionError(f"plot format {format!r}: use one of {FORMATS}")
        if units is not None and units not in UNITS:
            raise GraphicsOptionError(f"plot units {units!r}: use one of {UNITS}")
        for name, value in (("width", width), ("height", height), ("res", res),
                            ("pointsize", pointsize)):
            if value is not None and value <= 0:
                raise GraphicsOptionError(f"plot {name} must be positive, not {value}")
        self.format = format
        self.options = dict(width=width, height=height, units=units, res=res,
                            pointsize=pointsize, bg=bg, type=type)
        self.directory: Path | None = None
        self.pages: list[Path] = []
        self._device = None

    def device_arguments(self) -> dict:
        """Arguments for grDevices::png / svg, as rpy2's %%R computes them."""
        options = {key: value for key, value in self.options.items() if value is not None}
        if self.format == "png":
            if options.get("units", "px") != "px" and "res" not in options:
                options["res"] = 72  # R needs a resolution to size a bitmap in inches
            return options
        # svg() takes inches only and has no res/units; convert, as rpy2 does not.
        units = options.pop("units", "in")
        res = options.pop("res", 72)
        options.pop("type", None)
        for side in ("width", "height"):
            if side in options:
                options[side] = _to_inches(options[side], units, res)
        return options

    def __enter__(self) -> "RGraphics":
        from .engine import helper
        self.directory = Path(tempfile.mkdtemp(prefix="polymagic-R-plots-"))
        pattern = str(self.directory / f"Rplot%03d.{self.format}")
        arguments = self.device_arguments()
        if self.format == "svg":
            arguments["onefile"] = False  # one file per page, like png
        self._device = helper("open_device")(self.format, pattern, **arguments)
        return self

    def __exit__(self, *exc_info) -> None:
        from .engine import helper
        if self._device is not None:
            helper("close_device")(self._device)
            self._device = None
        self.pages = sorted(path for path in self.directory.iterdir()
                            if path.stat().st_size > 0)

    def discard(self) -> None:
        """Delete the page files (after they have been displayed)."""
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)


def _to_inches(size: float, units: str, res: float) -> float:
    if units == "px":
        return size / res
    return size / _PER_INCH[units]
