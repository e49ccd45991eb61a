"""The R room: embedded R's engine (engine.py), lifecycle and interrupts (runtime.py,
signals.c, guards.c: Ctrl-C, quit(), the C stack), graphics devices (graphics.py) and the R code they run (*.R)."""
from .engine import R, CellResult, REngine, RFunction

__all__ = ["R", "REngine", "RFunction", "CellResult"]
