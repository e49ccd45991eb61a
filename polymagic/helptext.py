"""`python -m polymagic help [TOPIC]`: the user docs, as installed with the package.

The texts are the files of the repository's docs/ folder, shipped inside the package
(polymagic/help/ holds symlinks to them, which a wheel stores as files), so an installed
user reads the same pages as a reader of the repository. Messages point here
(`python -m polymagic help julia`) rather than at a path in the repository.
"""
from __future__ import annotations

from pathlib import Path

HELP_DIR = Path(__file__).with_name("help")

# topic -> (file in help/, what it covers)
TOPICS = {
    "r": ("conversions-r.md", "R: what converts to and from R (view or copy), NA, the "
                              "magics' rules"),
    "r-faults": ("r.md", "R when things go wrong: errors, Ctrl-C, quit(), recursion, memory"),
    "julia": ("julia.md", "Julia: getting a runtime, the API, magics, conversions, errors"),
    "cpp": ("cpp.md", "C++: the types that cross, callbacks, calling Python, options"),
    "cython": ("cython.md", "Cython: options, how a cell is built, errors, speed"),
    "hub": ("hub.md", "the shared namespace: calling any language from any other"),
    "scale": ("scale.md", "other processes and machines: pickling cell functions, Dask"),
}


def topic_text(topic: str) -> str:
    """The text of `topic`; KeyError naming the topics when there is no such topic."""
    try:
        filename, _ = TOPICS[topic.lower()]
    except KeyError:
        raise KeyError(f"no help topic {topic!r}; topics: {', '.join(TOPICS)}") from None
    return (HELP_DIR / filename).read_text(encoding="utf-8")


def topics_text() -> str:
    """The list of topics, one line each."""
    width = max(map(len, TOPICS))
    lines = [f"  {name:<{width}}  {summary}" for name, (_, summary) in TOPICS.items()]
    return ("python -m polymagic help TOPIC, where TOPIC is one of:\n" + "\n".join(lines)
            + "\n")


def main(topic: str | None) -> int:
    """Print `topic` (or the list of topics); 2 for an unknown topic."""
    import sys
    if topic is None:
        sys.stdout.write(topics_text())
        return 0
    try:
        text = topic_text(topic)
    except KeyError as unknown:
        sys.stderr.write(f"{unknown.args[0]}\n")
        return 2
    sys.stdout.write(text)
    return 0
