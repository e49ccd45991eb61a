"""Options and helpers shared by every language's magics (`-i`, `-o`, `--copy`)."""
from __future__ import annotations

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument


def io_arguments(function):
    """Declare `-i/--input`, `-o/--output` (as rpy2's %%R spells them), `--copy` and
    `--shared-writes`."""
    decorators = [
        argument("-i", "--input", action="append", default=[], metavar="NAMES",
                 help="Python names to push in before the cell runs: repeatable, "
                      "comma separated, 'foreign=python' to rename."),
        argument("-o", "--output", action="append", default=[], metavar="NAMES",
                 help="Foreign names to pull into Python after the cell runs: "
                      "repeatable, comma separated, 'python=foreign' to rename."),
        argument("--copy", action="store_true", default=False,
                 help="Copy arrays that cross instead of sharing their memory."),
        argument("--shared-writes", action="store_true", default=False,
                 help="Let the foreign code write into the -i arrays (by default it "
                      "reads their memory but a write gives it its own copy or fails)."),
    ]
    for decorate in reversed(decorators):
        function = decorate(function)
    return function


def name_pairs(values: list[str]) -> list[tuple[str, str]]:
    """['a,b=c', 'd'] -> [('a', 'a'), ('b', 'c'), ('d', 'd')] (left=right renames)."""
    pairs = []
    for value in values:
        for item in value.split(","):
            item = item.strip()
            if not item:
                continue
            left, _, right = item.partition("=")
            left, right = left.strip(), (right.strip() or left.strip())
            if not (left.isidentifier() or _is_foreign_name(left)) or not right:
                raise UsageError(f"bad name {item!r} in -i/-o: expected NAME or A=B")
            pairs.append((left, right))
    return pairs


def _is_foreign_name(name: str) -> bool:
    """R and Julia allow dots and `!` in names that Python does not."""
    return bool(name) and all(ch.isalnum() or ch in "._!" for ch in name)


def lookup_inputs(values: list[str], namespace: dict, language: str) -> dict:
    """{foreign name: Python value} for `-i`, a UsageError naming any unknown name."""
    inputs = {}
    for foreign_name, python_name in name_pairs(values):
        if python_name not in namespace:
            raise UsageError(f"-i {python_name}: no Python variable named "
                             f"{python_name!r} to pass to {language}")
        inputs[foreign_name] = namespace[python_name]
    return inputs
