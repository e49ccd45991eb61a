"""Compile a Cython cell into an extension module and load it, without setuptools.

`cython(source, **options)` runs Cython in this process (with `#line` directives, so the
C compiler reports lines of the cell), calls the C compiler once to compile and link,
and loads the result with importlib's extension loader. Builds live in polymagic's
content-addressed cache (`polymagic.build`), keyed by the source, the options, the
compiler's identity and flags, Cython's version and the Python/NumPy ABI, so re-running
an unchanged cell loads in milliseconds, also in a new process.

Speed: Cython's memoryview support is ~20k lines of C that Cython's own magic compiles
into every cell. Here it is built once, as Cython's "shared utility module"
(`cython --shared`), cached like any cell, and imported by every cell that needs it.
Until it exists, a cell without memoryviews is compiled with its utility code inline
(no wait) while the shared module builds in the background (see `_CellBuild`).

Every Cython or C compiler failure raises `CompileError` whose diagnostics and `.lines`
use the cell's line numbers.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shlex
import shutil
import sys
import sysconfig
import tempfile
import threading
import time
from pathlib import Path

from ...build import cache_key, cached_build
from ...toolchain import compiler_identity, load_extension, run_tool
from ...toolchain import compiler as toolchain_compiler
from ...errors import CompileError, CythonOptionError

LANGUAGE = "Cython"
_MANIFEST = "build.json"
# In-process Cython keeps global state (Options, utility-code caches): one at a time.
_CYTHON_LOCK = threading.RLock()
_LOADED: dict[str, object] = {}  # extension path -> module, for same-process re-runs
_EXT_SUFFIX = sysconfig.get_config_var("EXT_SUFFIX")


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
    force: bool = False
    verbose: bool = False


@dataclasses.dataclass
class CythonBuild:
    """A loaded cell: the module, where it came from, and what the build said."""

    module: object
    path: Path
    cached: bool
    annotation_html: str | None
    numpy_include: bool
    warnings: list[str]
    utility_code: str  # "shared": imports Cython's shared utility module; "inline": its own


def cython(source: str, **options):
    """Compile `source` (Cython code) and return the loaded extension module.

    Options (all optional) mirror Cython's %%cython: annotate (False/True/"fullc"),
    cplus, language_level (2/3), compile_args, link_args, libraries, library_dirs,
    include_dirs, sources (extra C files), name, force, verbose.
    """
    return build(source, **options).module


def build(source: str, **options) -> CythonBuild:
    """Like `cython()`, returning the module with its annotation and build facts."""
    opts = make_options(**options)
    if opts.name is not None and not opts.name.isidentifier():
        raise CythonOptionError(f"Cython module name {opts.name!r} is not a Python identifier")
    source = source if source.endswith("\n") else source + "\n"
    toolchain = Toolchain.for_options(opts, distutils_header(source))
    started = time.perf_counter()
    cell = _CellBuild(source, opts, toolchain,
                      stamp=time.time() if opts.force else None)
    path = cell.cached_path() or cell.build()
    manifest = json.loads((path.parent / _MANIFEST).read_text())
    if manifest["utility_module"]:
        _load_utility_module(toolchain, manifest["utility_module"])
    module = _load_cell(path.name[:-len(_EXT_SUFFIX)], path, source)
    html = _read_annotation(path.parent / manifest["annotation"]) \
        if manifest["annotation"] else None
    if opts.verbose:
        print(f"[polymagic cython] {module.__name__} from {path} "
              f"({'cache hit' if not cell.ran else 'built'}, utility code "
              f"{manifest['utility_code']}, {time.perf_counter() - started:.3f} s)",
              file=sys.stderr)
    return CythonBuild(module, path, not cell.ran, html, manifest["numpy_include"],
                       manifest["warnings"], manifest["utility_code"])


def make_options(*, annotate=False, cplus=False, language_level=3, compile_args=(),
                 link_args=(), libraries=(), library_dirs=(), include_dirs=(),
                 sources=(), name=None, force=False, verbose=False) -> CythonOptions:
    """Validated, normalised options (paths made absolute: they are part of the key)."""
    if annotate not in (False, True, None, "default", "fullc"):
        raise CythonOptionError(f"annotate={annotate!r}: expected False, True or 'fullc'")
    if str(language_level) not in ("2", "3", "3str"):
        raise CythonOptionError(f"language_level={language_level!r}: expected 2 or 3")
    return CythonOptions(
        annotate="default" if annotate is True else (annotate or None),
        cplus=bool(cplus), language_level=language_level,
        compile_args=_flag_list(compile_args), link_args=_flag_list(link_args),
        libraries=tuple(libraries), library_dirs=_absolute(library_dirs),
        include_dirs=_absolute(include_dirs), sources=_absolute(sources),
        name=name, force=bool(force), verbose=bool(verbose))


def _flag_list(values) -> tuple[str, ...]:
    """Compiler flags: a string is split like a shell would ("-O3 -ffast-math")."""
    values = [values] if isinstance(values, str) else list(values)
    return tuple(flag for value in values for flag in shlex.split(value))


def _absolute(paths) -> tuple[str, ...]:
    paths = [paths] if isinstance(paths, str) else list(paths)
    return tuple(os.path.abspath(os.path.expanduser(p)) for p in paths)


def _key_options(opts: CythonOptions) -> dict:
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


# ---------------------------------------------------------------------------------------
# Toolchain: which compiler and which flags (everything here is part of the cache key)


@dataclasses.dataclass(frozen=True)
class Toolchain:
    """The C or C++ compiler and the full flag list for one build."""

    compiler: str
    cplus: bool
    flags: tuple[str, ...]          # before the sources
    link_flags: tuple[str, ...]     # after the sources
    define_numpy: tuple[str, ...] = ("-DNPY_NO_DEPRECATED_API=NPY_1_7_API_VERSION",)

    @classmethod
    def for_options(cls, opts: CythonOptions, header: dict) -> "Toolchain":
        cplus = opts.cplus or header.get("language") == "c++"
        compiler = _compiler(cplus)
        include_dirs = [*opts.include_dirs, *_absolute(header.get("include_dirs", ()))]
        macros = [f"-D{name}" + ("" if value is None else f"={value}")
                  for name, value in header.get("define_macros", ())]
        flags = ("-shared", "-fPIC", "-O2", "-fwrapv", "-DNDEBUG",
                 f"-I{sysconfig.get_paths()['include']}",
                 *(f"-I{d}" for d in include_dirs), *macros,
                 *header.get("extra_compile_args", ()), *opts.compile_args)
        link_flags = (*(f"-L{d}" for d in [*opts.library_dirs,
                                             *_absolute(header.get("library_dirs", ()))]),
                      *(f"-l{lib}" for lib in [*opts.libraries,
                                               *header.get("libraries", ())]),
                      *header.get("extra_link_args", ()), *opts.link_args)
        return cls(compiler, cplus, tuple(flags), tuple(link_flags))

    def key_parts(self) -> list:
        import Cython  # the package root is light (~10 ms); the compiler is not imported
        return [compiler_identity(self.compiler), self.cplus, list(self.flags),
                list(self.link_flags), Cython.__version__]

    @property
    def utility_name(self) -> str:
        """The module name of Cython's shared utility code for this toolchain."""
        import Cython
        digest = hashlib.sha256(json.dumps(
            [compiler_identity(self.compiler), self.cplus, Cython.__version__,
             sys.implementation.cache_tag]).encode()).hexdigest()[:16]
        return f"_pm_cyutility_{digest}"


def _compiler(cplus: bool) -> str:
    """The C or C++ compiler, by polymagic.toolchain's one rule."""
    return toolchain_compiler("c++" if cplus else "c")


# ---------------------------------------------------------------------------------------
# One cell build: Cython in-process, then one compiler call

SHARED, INLINE = "shared", "inline"  # where a cell's Cython utility code lives


@dataclasses.dataclass
class _Generated:
    """Cython's output for a cell, in a scratch directory, before it is compiled."""

    mode: str
    c_file: Path
    numpy_used: bool
    warnings: list[str]
    imports_utility: bool    # the C imports the shared utility module (shared mode)
    uses_cython_utility: bool  # needs utility code written in Cython (memoryviews)


class _CellBuild:
    """Produces a cache entry: <name>.pyx, the extension, build.json, maybe <name>.html.

    A cell's entry is keyed by its inputs and by where its utility code lives: "shared"
    (it imports Cython's shared utility module) or "inline" (it carries its own, as with
    Cython's magic). When the shared module is not built yet, a cell that needs no
    utility code written in Cython (memoryviews, cython.view) is compiled inline at
    once, and the shared module is built in the background for later cells; a cell
    with memoryviews waits for the shared module, which is faster for it than compiling
    ~20k lines of memoryview C into the cell.
    """

    def __init__(self, source: str, opts: CythonOptions, toolchain: Toolchain,
                 stamp: float | None):
        self.source = source
        self.opts = opts
        self.toolchain = toolchain
        parts = (source, _key_options(opts), toolchain.key_parts(), stamp)
        self.keys = {mode: cache_key("cython", *parts, mode) for mode in (SHARED, INLINE)}
        self.ran = False

    def module_name(self, mode: str) -> str:
        return self.opts.name or f"_pm_{self.keys[mode]}"

    def artifact(self, mode: str) -> str:
        return self.module_name(mode) + _EXT_SUFFIX

    def cached_path(self) -> Path | None:
        """The extension of an existing entry for this cell, shared or inline."""
        from ...build import cache_dir
        for mode in (SHARED, INLINE):
            path = cache_dir() / self.keys[mode] / self.artifact(mode)
            if path.exists():
                return path
        return None

    def build(self) -> Path:
        """Run Cython, decide where the utility code lives, compile and publish."""
        from ...build import cache_dir
        utility = _utility_build(self.toolchain)
        with tempfile.TemporaryDirectory(prefix=".cython-", dir=cache_dir()) as scratch:
            generated = self._cythonize(Path(scratch), SHARED, utility.name)
            if (generated.imports_utility and not generated.uses_cython_utility
                    and not utility.ready()):
                generated = self._cythonize(Path(scratch), INLINE, utility.name)
            # After the cell's Cython runs: the utility's C generation needs the lock.
            utility.start()
            if self.opts.verbose:
                print(f"[polymagic cython] utility code {generated.mode} "
                      f"({utility.state()})", file=sys.stderr)
            mode = generated.mode
            return cached_build(self.keys[mode], self.artifact(mode),
                                lambda staging: self._produce(staging, generated, utility))

    def _produce(self, staging: Path, generated: _Generated, utility) -> None:
        self.ran = True  # not when another process published this entry meanwhile
        name = self.module_name(generated.mode)
        for produced in generated.c_file.parent.glob(f"{name}.*"):
            produced.rename(staging / produced.name)  # .pyx, .c/.cpp, .html, .lis
        c_file = staging / generated.c_file.name
        if generated.imports_utility:
            utility.raise_failure()  # a failed background build: before compiling
        c_warnings = self._compile(c_file, staging, generated)
        if generated.imports_utility:
            utility.wait()
        html = staging / f"{name}.html"
        manifest = {"utility_code": generated.mode,
                    "utility_module": utility.name if generated.imports_utility else None,
                    "numpy_include": generated.numpy_used,
                    "annotation": html.name if html.exists() else None,
                    "warnings": generated.warnings + c_warnings}
        (staging / _MANIFEST).write_text(json.dumps(manifest))
        if not self.opts.verbose:
            c_file.unlink()  # large and regenerable; kept with --verbose for inspection
        for warning in manifest["warnings"]:
            print(warning, file=sys.stderr)

    def _cythonize(self, scratch: Path, mode: str, utility_name: str) -> _Generated:
        """Run Cython on the cell in `scratch`, its utility code `mode` (shared/inline)."""
        name = self.module_name(mode)
        for stale in scratch.glob("*"):
            stale.unlink()  # the other mode's output, when Cython runs twice
        pyx = scratch / f"{name}.pyx"
        pyx.write_text(self.source, encoding="utf-8")
        with _CYTHON_LOCK:
            from Cython.Compiler import Errors
            from Cython.Compiler.Main import (CompilationOptions, Context,
                                              compile_single, default_options)
            from Cython.Compiler.UtilityCode import CythonSharedUtilityCode
            options = CompilationOptions(
                default_options, cplus=self.toolchain.cplus,
                language_level=self.opts.language_level, annotate=self.opts.annotate,
                emit_linenums=True, use_listing_file=True, errors_to_stderr=False,
                shared_utility_qualified_name=utility_name if mode == SHARED else None,
                include_path=[os.getcwd(), *self.opts.include_dirs])
            context = Context.from_options(options)
            try:
                result = compile_single(str(pyx), options, name, context=context)
            except (Errors.PyrexError, Errors.InternalError, Errors.AbortError) as crash:
                raise CompileError(LANGUAGE, f"Cython failed: {crash}") from crash
        listing = pyx.with_suffix(".lis")
        report = listing.read_text(encoding="utf-8") if listing.exists() else ""
        if result.num_errors or not result.c_file:
            text, lines = map_cython_listing(report, pyx.name)
            raise CompileError(LANGUAGE, text or "Cython reported errors", lines=lines)
        c_file = Path(result.c_file)
        scope = context.modules.get(name)
        return _Generated(
            mode=mode, c_file=c_file,
            # Cython records every module the cell cimports (directly or through a .pxd).
            numpy_used="numpy" in context.modules,
            warnings=[line for line in map_cython_listing(report, pyx.name)[0].splitlines()
                      if line.startswith("cell:")],
            imports_utility=mode == SHARED and f'"{utility_name}"' in c_file.read_text(
                encoding="utf-8"),
            # Utility code written in Cython (the memoryview machinery) is what makes a
            # cell's C large; Cython queues it on the module scope while analysing.
            uses_cython_utility=scope is not None and any(
                isinstance(code, CythonSharedUtilityCode)
                for code in scope.utility_code_list))

    def _compile(self, c_file: Path, staging: Path, generated: _Generated) -> list[str]:
        """Compile and link in one compiler call; return the warnings about the cell."""
        tool = self.toolchain
        numpy_flags = []
        if generated.numpy_used:
            import numpy
            numpy_flags = [f"-I{numpy.get_include()}", *tool.define_numpy]
        output = staging / self.artifact(generated.mode)
        command = [tool.compiler, *tool.flags, *numpy_flags, c_file.name,
                   *self.opts.sources, "-o", output.name, *tool.link_flags]
        if self.opts.verbose:
            print("[polymagic cython] " + shlex.join(command), file=sys.stderr)
        finished = run_tool(command, cwd=staging)
        text, lines = map_c_diagnostics(finished.stderr + finished.stdout, c_file,
                                        self.source)
        if self.opts.verbose and (finished.stderr or finished.stdout):
            print(finished.stderr + finished.stdout, file=sys.stderr)
        if finished.returncode != 0:
            raise CompileError(f"{LANGUAGE} (C compiler)", text or
                               f"{tool.compiler} exited with {finished.returncode}",
                               command=command, lines=lines)
        return [line for line in text.splitlines()
                if line.startswith("cell:") and ": warning:" in line]


# ---------------------------------------------------------------------------------------
# Cython's shared utility module (memoryviews etc.), built once per toolchain

_UTILITY_BUILDS: dict[tuple[str, str], "_UtilityBuild"] = {}
_UTILITY_BUILDS_LOCK = threading.Lock()


def _utility_build(toolchain: Toolchain) -> "_UtilityBuild":
    """The one _UtilityBuild of this process for a toolchain and cache directory."""
    from ...build import cache_dir
    name = toolchain.utility_name
    with _UTILITY_BUILDS_LOCK:
        key = (str(cache_dir()), name)
        if key not in _UTILITY_BUILDS:
            _UTILITY_BUILDS[key] = _UtilityBuild(toolchain)
        return _UTILITY_BUILDS[key]


class _UtilityBuild:
    """Builds Cython's shared utility module into the cache in a background thread.

    One per toolchain and process (`_utility_build`), so a cell that needs the module
    waits for the build already running instead of starting another. The thread is not
    a daemon: at exit Python waits for the compiler (a few seconds at most) and the
    entry is published, so no compiler is left orphaned and no half-built entry is
    visible (`cached_build` publishes atomically; another process building the same
    module at the same time is harmless: the first rename wins). A failure is kept and
    raised, as CompileError, by the next cell that needs the module; that cell consumes
    it, so the one after retries the build.
    """

    def __init__(self, toolchain: Toolchain):
        self.toolchain = toolchain
        self.name = toolchain.utility_name
        self.key = cache_key("cyutility", self.name, toolchain.key_parts()[:2])
        self.artifact = self.name + _EXT_SUFFIX
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    @property
    def path(self) -> Path:
        from ...build import cache_dir
        return cache_dir() / self.key / self.artifact

    def ready(self) -> bool:
        """Loaded in this process or built in the cache."""
        return self.name in sys.modules or self.path.exists()

    def state(self) -> str:
        with self._lock:
            if self._failure is not None:
                return "shared utility module failed to build"
            if self._thread is not None and self._thread.is_alive():
                return "shared utility module building in the background"
        return "shared utility module ready" if self.ready() else \
            "shared utility module missing"

    def start(self) -> None:
        """Start building in the background unless built, building, or failed."""
        with self._lock:
            running = self._thread is not None and self._thread.is_alive()
            if running or self._failure is not None or self.ready():
                return
            self._thread = threading.Thread(target=self._run, name=f"polymagic {self.name}")
            self._thread.start()

    def wait(self) -> Path:
        """The built module's path, after the build (raises the build's failure)."""
        self.start()
        thread = self._thread
        if thread is not None:
            thread.join()
        self.raise_failure()
        return self.path

    def raise_failure(self) -> None:
        """Raise (once) the failure of a finished background build, as CompileError.

        Moot, and dropped, when the module exists after all (another process built it).
        """
        with self._lock:
            failure, self._failure = self._failure, None
        if failure is None or self.ready():
            return
        if isinstance(failure, CompileError):
            raise failure
        raise CompileError(LANGUAGE, "building Cython's shared utility module failed: "
                           f"{type(failure).__name__}: {failure}") from failure

    def _run(self) -> None:
        try:
            cached_build(self.key, self.artifact, self._produce)
        except BaseException as failure:  # kept, and raised by the next cell needing it
            with self._lock:
                self._failure = failure

    def _produce(self, staging: Path) -> None:
        suffix = ".cpp" if self.toolchain.cplus else ".c"
        c_file = staging / (self.name + suffix)
        with _CYTHON_LOCK:
            from Cython.Build.SharedModule import generate_shared_module
            from Cython.Compiler.Main import CompilationOptions, default_options
            options = CompilationOptions(
                default_options, cplus=self.toolchain.cplus,
                shared_c_file_path=str(c_file), errors_to_stderr=False)
            error, _ = generate_shared_module(options)
        if error is not None:
            raise CompileError(LANGUAGE, f"generating Cython's utility module: {error}")
        tool = self.toolchain
        command = [tool.compiler, "-shared", "-fPIC", "-O2", "-fwrapv", "-DNDEBUG",
                   f"-I{sysconfig.get_paths()['include']}", c_file.name, "-o",
                   self.artifact]
        nice = shutil.which("nice")  # in the background: the cell's own compile goes first
        finished = run_tool([nice, "-n", "10", *command] if nice else command, cwd=staging)
        if finished.returncode != 0:
            raise CompileError(f"{LANGUAGE} (C compiler)",
                               "building Cython's shared utility module failed:\n"
                               + (finished.stderr or finished.stdout), command=command)
        c_file.unlink()


def utility_path(toolchain: Toolchain) -> Path:
    """Where Cython's shared utility module for `toolchain` lives in the cache."""
    return _utility_build(toolchain).path


def _load_utility_module(toolchain: Toolchain, name: str) -> None:
    """Make the shared utility module importable by name before a cell imports it."""
    if name in sys.modules:
        return
    path = _utility_build(toolchain).wait()  # built again if the cache was pruned
    sys.modules[name] = _load_extension(name, path)


# ---------------------------------------------------------------------------------------
# Loading


def _load_extension(name: str, path: Path):
    """Load an extension module from `path` with importlib (no sys.path lookup)."""
    key = str(path)
    if key in _LOADED:
        return _LOADED[key]
    module = _LOADED[key] = load_extension(name, key)
    return module


def _load_cell(name: str, path: Path, source: str):
    """Load a built cell; an unresolved C symbol is a link error of the cell."""
    try:
        return _load_extension(name, path)
    except ImportError as failure:
        symbol = re.search(r"undefined symbol: (\w+)", str(failure))
        if symbol is None:
            raise  # the cell's own module-level code failed to import something
        lines = [number for number, text in enumerate(source.splitlines(), start=1)
                 if re.search(rf"\b{symbol[1]}\b", text)][:1]
        where = f"cell:{lines[0]}: " if lines else ""
        raise CompileError(
            f"{LANGUAGE} (linker)",
            f"{where}error: undefined symbol {symbol[1]!r}: declared but defined by no "
            "compiled code or library (add -l/-L/-S, or define it)",
            lines=lines) from failure


def _read_annotation(html_file: Path) -> str:
    """Cython's annotated HTML reduced to a snippet (style + body) for inline display."""
    html = html_file.read_text(encoding="utf-8")
    styles = re.findall(r"<style.*?</style>", html, re.DOTALL)
    body = re.search(r"<body[^>]*>(.+)</body>", html, re.DOTALL)
    content = body.group(1) if body else html
    content = "\n".join(line for line in content.splitlines()
                        if not line.startswith("<p>Raw output:"))
    return "\n".join([*styles, content])


# ---------------------------------------------------------------------------------------
# Diagnostics -> cell lines


_CYTHON_POSITION = re.compile(r"^(?P<warn>warning: )?(?P<file>\S+?):(?P<line>\d+):"
                              r"(?P<col>\d+): (?P<message>.*)$")


def map_cython_listing(report: str, pyx_name: str) -> tuple[str, list[int]]:
    """Cython's error listing with positions as `cell:LINE:COL`; the error lines."""
    out, lines = [], []
    for raw in report.splitlines():
        match = _CYTHON_POSITION.match(raw)
        if match and Path(match["file"]).name == pyx_name:
            kind = "warning" if match["warn"] else "error"
            out.append(f"cell:{match['line']}:{match['col']}: {kind}: {match['message']}")
            if kind == "error":
                lines.append(int(match["line"]))
        elif raw.strip() and not raw.startswith(("Error compiling Cython file", "---")):
            out.append(raw)
    return "\n".join(out), lines


_C_POSITION = re.compile(r"^(?P<prefix>In file included from |\s+from )?(?P<file>[^\s:]"
                         r"[^:]*):(?P<line>\d+)(?::(?P<col>\d+))?(?P<rest>[:,].*)?$")


def map_c_diagnostics(stderr: str, c_file: Path, source: str) -> tuple[str, list[int]]:
    """C compiler output with cell positions as `cell:LINE:COL`; the cell lines of errors.

    Lines of the cell reach the compiler through Cython's `#line` directives. Code that
    Cython copies without a `#line` (verbatim C blocks, `cdef extern from "x.h"`
    includes) is found in the cell by its text.
    """
    pyx_name = c_file.with_suffix(".pyx").name
    c_lines = c_file.read_text(encoding="utf-8").splitlines()
    cell_lines = source.splitlines()
    out, error_lines, include_line = [], [], None
    for raw in stderr.splitlines():
        match = _C_POSITION.match(raw)
        if not match:  # e.g. "x.pyx: In function 'f':", or a source excerpt
            out.append(raw.replace(pyx_name, "cell").replace(c_file.name, "cell (C)"))
            continue
        name, line = Path(match["file"]).name, int(match["line"])
        cell_line = None
        if name == pyx_name:
            cell_line = line
        elif name == c_file.name:
            cell_line = _cell_line_of_c_line(c_lines, line, cell_lines)
        ours = name in (pyx_name, c_file.name)
        if match["prefix"]:  # an include chain: remember the cell line it starts from
            include_line = cell_line if match["prefix"].startswith("In") else \
                (include_line or cell_line)
            out.append(raw)
            continue
        if not ours:
            cell_line = include_line  # inside a header that the cell included
        else:
            include_line = None
        rest = match["rest"] or ""
        if cell_line is None:
            out.append(raw)
            continue
        where = f"cell:{cell_line}"  # no column: #line maps lines, not columns
        out.append(where + ("" if ours else f" (in {match['file']}:{line})") + rest)
        if re.match(r"^: (fatal )?error:", rest):
            error_lines.append(cell_line)
    return "\n".join(out), error_lines


def _cell_line_of_c_line(c_lines: list[str], number: int, cell_lines: list[str]):
    """The cell line that produced C line `number`, for code copied without #line."""
    if not 0 < number <= len(c_lines):
        return None
    text = c_lines[number - 1].strip()
    include = re.match(r'#include\s+["<](?P<header>[^">]+)[">]', text)
    for index, cell_text in enumerate(cell_lines, start=1):
        if include:
            if "extern from" in cell_text and (f'"{include["header"]}"' in cell_text or
                                               f"'{include['header']}'" in cell_text):
                return index
        elif text and cell_text.strip() == text:
            return index
    return None
