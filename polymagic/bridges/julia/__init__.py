"""The Julia room: juliacall's engine (engine.py), finding a Julia runtime (locate.py)
and the Julia code they run (*.jl)."""
from .engine import JuliaBridge, julia

__all__ = ["julia", "JuliaBridge"]
