"""The options of a Cython build (those of Cython's %%cython), validated and normalised,
and the part of them that goes into a cache key."""
from __future__ import annotations

import dataclasses
import hashlib
import os
import shlex
from pathlib import Path

from ...errors import CythonOptionError


@dataclasses.dataclass(frozen=True)
class CythonOptions:
    """What a build depends on besides the source (the options of Cython's %%cython)."""

    annotate: str | None = None  # None, "default" or "fullc"
    cplus: bool = False
    language_level: int | str = 3
    compile_args: tuple[str, ...] = ()
    link_args: tuple[str, ...] = ()
    libraries: tuple[str, ...] = ()
    library_dirs: tuple[str, ...] = ()
    include_dirs: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    name: str | None = None
    pgo: bool = False
    force: bool = False
    verbose: bool = False


def make_options(*, annotate=False, cplus=False, language_level=3, compile_args=(),
                 link_args=(), libraries=(), library_dirs=(), include_dirs=(),
                 sources=(), name=None, pgo=False, force=False,
                 verbose=False) -> CythonOptions:
    """Validated, normalised options (paths made absolute: they are part of the key)."""
    if annotate not in (False, True, None, "default", "fullc"):
        raise CythonOptionError(f"annotate={annotate!r}: expected False, True or 'fullc'")
    if str(language_level) not in ("2", "3", "3str"):
        raise CythonOptionError(f"language_level={language_level!r}: expected 2 or 3")
    for option, value in (("compile_args", compile_args), ("link_args", link_args),
                          ("libraries", libraries), ("library_dirs", library_dirs),
                          ("include_dirs", include_dirs), ("sources", sources),
                          ("name", name)):
        _check_text(option, value)
    return CythonOptions(
        annotate="default" if annotate is True else (annotate or None),
        cplus=bool(cplus), language_level=language_level,
        compile_args=flag_list(compile_args), link_args=flag_list(link_args),
        libraries=tuple(libraries), library_dirs=absolute_paths(library_dirs),
        include_dirs=absolute_paths(include_dirs), sources=absolute_paths(sources),
        name=name, pgo=bool(pgo), force=bool(force), verbose=bool(verbose))


def _check_text(option: str, values) -> None:
    """An option's text must be encodable: it is passed to the compiler and written in
    file names (a lone surrogate, e.g. from a broken paste, cannot be)."""
    for value in [values] if isinstance(values, str) else (values or ()):
        try:
            str(value).encode("utf-8")
        except UnicodeEncodeError as bad:
            raise CythonOptionError(
                f"{option}={value!r}: character {bad.object[bad.start]!r} at position "
                f"{bad.start} cannot be encoded as UTF-8 (a lone surrogate)") from None


def flag_list(values) -> tuple[str, ...]:
    """Compiler flags: a string is split like a shell would ("-O3 -ffast-math")."""
    values = [values] if isinstance(values, str) else list(values)
    flags = []
    for value in values:
        try:
            flags.extend(shlex.split(value))
        except ValueError as unreadable:  # "No closing quotation", "No escaped character"
            raise CythonOptionError(f"compiler flags {value!r}: {unreadable}") from None
    return tuple(flags)


def absolute_paths(paths) -> tuple[str, ...]:
    paths = [paths] if isinstance(paths, str) else list(paths)
    return tuple(os.path.abspath(os.path.expanduser(p)) for p in paths)


def key_options(opts: CythonOptions) -> dict:
    """The options that change the built bytes, with the content of extra C sources."""
    parts = dataclasses.asdict(opts)
    parts.pop("verbose")
    parts.pop("force")
    parts["sources"] = [(path, _file_digest(path)) for path in opts.sources]
    return parts


def _file_digest(path: str) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError as missing:
        raise CythonOptionError(f"Cython extra source {path}: {missing.strerror}") from None


def distutils_header(source: str) -> dict:
    """The `# distutils: key = value` settings at the top of a cell (Cython's syntax)."""
    for line in source.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return {}
        if stripped[1:].lstrip().startswith("distutils:"):
            from Cython.Build.Dependencies import DistutilsInfo  # ~0.1 s: only when used
            return dict(DistutilsInfo(source=source).values)
    return {}
