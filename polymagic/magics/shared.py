"""Options and helpers shared by every language's magics (`-i`, `-o`, `--copy`)."""
from __future__ import annotations

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument

from ..errors import MagicNameError, also


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
    """{foreign name: Python value} for `-i`; see `input_triples` for the errors."""
    return {foreign: value for foreign, _, value
            in input_triples(values, namespace, language)}


def input_triples(values: list[str], namespace, language: str, option: str = "-i"):
    """[(foreign name, Python name, value)] for `-i` (or `%Rpush`). A Python name may be
    a dotted path (`module.attribute`), as rpy2 allows; an unknown name raises
    MagicNameError, a NameError that is also IPython's UsageError, naming it."""
    return [(foreign, python, find_python(python, namespace, language, option))
            for foreign, python in name_pairs(values)]


def find_python(name: str, namespace, language: str | None, option: str):
    """The value of `name` (or dotted path `a.b.c`) in `namespace`; `language`, if
    given, is where the value was to go (for the message)."""
    first, *attributes = name.split(".")
    if first not in namespace:
        where = f" to pass to {language}" if language else ""
        raise also(MagicNameError(f"{option} {name}: no Python variable named "
                                  f"{first!r}{where}"), UsageError)
    value = namespace[first]
    for depth, attribute in enumerate(attributes, start=1):
        if not hasattr(value, attribute):
            where = ".".join([first, *attributes[:depth - 1]])
            raise also(MagicNameError(f"{option} {name}: {where} has no attribute "
                                      f"{attribute!r}"), UsageError)
        value = getattr(value, attribute)
    return value


def parse_options(label: str, magic, line: str):
    """`magic`'s options from `line`; every malformed line is a UsageError naming the
    magic (`label`, e.g. "%%R"), unbalanced quotes included (shlex's ValueError)."""
    from IPython.core.magic_arguments import parse_argstring
    try:
        return parse_argstring(magic, line)
    except ValueError as error:  # shlex: "No closing quotation", "No escaped character"
        raise UsageError(f"{label}: cannot read the options {line!r}: {error}") from None


def check_text(label: str, **texts: str | None) -> None:
    """UsageError naming the magic and the place when a text (the option line, the
    cell) holds a character UTF-8 cannot encode: a lone surrogate, e.g. from a broken
    copy and paste. Keyword names say where: check_text("%%R", cell=cell)."""
    for where, text in texts.items():
        if text is None:
            continue
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as bad:
            before = text[:bad.start]
            raise UsageError(
                f"{label}: the {where.replace('_', ' ')} holds {text[bad.start]!r} at "
                f"line {before.count(chr(10)) + 1}, column "
                f"{bad.start - before.rfind(chr(10))}, which cannot be encoded as UTF-8 "
                "(a lone surrogate, e.g. from a broken copy and paste)") from None
