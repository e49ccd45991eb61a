"""Precompiled headers for new %%cpp cells (polymagic/bridges/cpp/prelude.py): used when
built, keyed by the exact flags, never changing what a cell means, and a damaged or
stale one is rebuilt or bypassed, never a failed build."""
import io
import json
import os
import shutil
import warnings
from contextlib import redirect_stdout
from pathlib import Path

import pytest

import polymagic as pm
from polymagic.bridges.cpp import compiler, prelude, signatures
from polymagic.bridges.cpp.options import CppOptions
from polymagic.errors import CompileError, DamagedCacheEntry
from polymagic.toolchain import compiler as find_compiler

if shutil.which(os.environ.get("CXX", "c++")) is None and shutil.which("g++") is None:
    pytest.skip("no C++ compiler on PATH", allow_module_level=True)

pytestmark = pytest.mark.usefixtures("private_cache")

VECTOR_CELL = ("#include <string>\n#include <vector>\n"
               "std::vector<double> ramp(int n) { std::vector<double> v(n);"
               " for (int i = 0; i < n; ++i) v[i] = i; return v; }\n")
ALGORITHM_CELL = ("#include <algorithm>\n#include <vector>\n"
                  "int smallest() { std::vector<int> v{3, 1, 2};"
                  " std::sort(v.begin(), v.end()); return v[0]; }\n")


def warmed(define: str, cell: str = VECTOR_CELL, **options) -> dict:
    """Options with a flag of their own (so precompiled headers of their own), after
    the two builds that start their precompilation, and its end."""
    options = dict(options, compile_args=f"-D{define} {options.get('compile_args', '')}")
    for number in range(prelude._Builds.WANTED_BEFORE_BUILD):
        pm.cpp(f"{cell}// warm {number}\n", **options)
    prelude.wait()
    return options


@pytest.fixture(scope="module")
def shared(private_cache):
    """Options whose two preludes (small and big) are built, shared by the tests that
    do not damage them (-H: g++ lists the headers it reads, '!' for a .gch used)."""
    warmed("PM_TEST_SHARED", compile_args="-H")
    return warmed("PM_TEST_SHARED", cell=ALGORITHM_CELL, compile_args="-H")


def build_verbose(cell: str, **options) -> tuple[object, str]:
    """The module and what --verbose printed (commands and the compilers' stderr)."""
    printed = io.StringIO()
    with redirect_stdout(printed):
        module = pm.cpp(cell, verbose=True, **options)
    return module, printed.getvalue()


def cell_command(printed: str) -> str:
    return next(line for line in printed.splitlines() if "cell_module.cpp" in line
                and " -c " in line)


def glue_command(printed: str) -> str:
    return next(line for line in printed.splitlines() if "glue.c" in line)


def prelude_entry(name: str, options: CppOptions) -> Path:
    cxx = find_compiler("c++")
    flags = [*options.cxx_flags(), f"-I{signatures.INCLUDE_DIR}", "-fvisibility=hidden"]
    header = prelude.compiler_prelude(cxx, flags, name)
    assert header is not None, "the precompiled header should have been built"
    return header.parent


# ------------------------------------------------------------------ which cells

@pytest.mark.parametrize("cell, expected", [
    ("#include <vector>\nint f() { return 1; }\n", prelude.STD_CORE),
    ("#include <string>\n#include <span>\n", prelude.STD_CORE),
    ("#include <vector>\n#include <iostream>\n", prelude.STD_CORE),
    ("#include <vector>\n#include <cmath>\n", prelude.STD_PRELUDE),
    ("#pragma once\n#include <algorithm>\n", prelude.STD_PRELUDE),
    ("#include <polymagic.hpp>\n#include <vector>\n#define N 3\n", prelude.STD_CORE),
    ("/* c */ #include <map>\n", prelude.STD_PRELUDE),
    ("int f() { return 1; }\n", None),
    ("#include <iostream>\n", None),
    ("#define _GLIBCXX_DEBUG\n#include <vector>\n", None),
    ("#include <vector>\n#undef NDEBUG\n#include <cassert>\n", None),
    ("#ifdef FAST\n#include <vector>\n#endif\n", None),
    ("#include \"mine.h\"\n#include <vector>\n", None),
    ("#include <vector>\n#include <Eigen/Dense>\n", None),
    ("#include <vector>\n#pragma GCC optimize(\"O3\")\n#include <cmath>\n", None),
])
def test_which_prelude_a_cell_gets(cell, expected):
    """Only cells whose includes are all standard, with no other directive before the
    last of them, get a prelude; the small one when it holds all they include."""
    assert prelude.choose(cell) == expected


def test_a_flag_that_includes_a_file_first_rules_the_prelude_out():
    """-include/-imacros would no longer come first: no prelude."""
    assert prelude.choose(VECTOR_CELL, ("-include", "config.h")) is None
    assert prelude.choose(VECTOR_CELL, ("-imacros", "config.h")) is None
    assert prelude.choose(VECTOR_CELL, ("-DX",)) == prelude.STD_CORE


# ------------------------------------------------------------------- it is used

def test_gxx_loads_the_precompiled_prelude_and_glue_header(shared):
    """After two builds with the same flags, g++ reads the cell's prelude from its
    .gch (-H marks a used precompiled header with '!'), and the glue force-includes
    its own precompiled Python.h without an invalid-PCH warning."""
    module, printed = build_verbose(VECTOR_CELL + "// used\n", **shared)
    assert module.ramp(3).tolist() == [0.0, 1.0, 2.0]
    used = [line for line in printed.splitlines() if line.startswith("! ")]
    assert used and used[0].endswith(f"/{prelude.STD_CORE}.gch")
    assert f"-include {used[0][2:-4]}" in cell_command(printed)
    assert prelude.GLUE_PRELUDE in glue_command(printed)
    assert "[-Winvalid-pch]" not in printed  # no precompiled header was refused


def test_the_big_prelude_for_cells_beyond_the_small_one(shared):
    """A cell including <algorithm> gets std_prelude.hpp, and works."""
    module, printed = build_verbose(ALGORITHM_CELL + "// big\n", **shared)
    assert module.smallest() == 1
    assert f"/{prelude.STD_PRELUDE}.gch" in printed


def test_libclang_reads_the_cell_with_its_precompiled_prelude(shared):
    """The plan read with libclang's .pch is the plan read without it."""
    options = CppOptions.make(**shared)
    cxx = find_compiler("c++")
    args = signatures.clang_args(cxx, options.std, options.include_dirs,
                                 options.preprocessor_flags())
    assert prelude.libclang_prelude(args, prelude.STD_CORE) is not None
    source = VECTOR_CELL + "std::string greet(const std::string& s) { return s; }\n"
    with_pch = compiler._read_with_prelude(source, args, prelude.STD_CORE)
    assert with_pch is not None
    assert with_pch == signatures.parse(source, args)


def test_each_std_has_its_own_precompiled_prelude(shared):
    """A precompiled header is only valid for its flags: c++17 and c++20 get two."""
    entries = {}
    for std in ("c++17", "c++20"):
        if std != CppOptions().std:  # the shared options have the default's
            warmed("PM_TEST_SHARED", compile_args="-H", std=std)
        options = CppOptions.make(**dict(shared, std=std))
        entries[std] = prelude_entry(prelude.STD_CORE, options)
        assert (entries[std] / f"{prelude.STD_CORE}.gch").is_file()
    assert entries["c++17"] != entries["c++20"]
    span = "#include <span>\ndouble first(std::span<const double> xs) { return xs[0]; }\n"
    module = pm.cpp(span, **dict(shared, std="c++20"))
    import numpy as np
    assert module.first(np.array([4.0, 5.0])) == 4.0


# ----------------------------------------------------- it changes no cell's meaning

def test_a_macro_defined_before_an_include_keeps_its_effect(shared):
    """`#define _GLIBCXX_USE_CXX11_ABI 0` before <string> selects the old string (8
    bytes, where the prelude's is 32): the cell compiles without the prelude."""
    cell = ("#define _GLIBCXX_USE_CXX11_ABI 0\n#include <string>\n"
            "long string_size() { return sizeof(std::string); }\n")
    module, printed = build_verbose(cell, **shared)
    assert module.string_size() == 8
    assert "-include" not in cell_command(printed)


def test_a_cell_clashing_with_a_prelude_header_builds_as_without_it(shared):
    """math.h (in the big prelude, not included by the cell) declares y1(double);
    the cell's own global y1 still compiles, without the prelude."""
    cell = "#include <algorithm>\ndouble y1 = 2.5;\ndouble get() { return y1; }\n"
    module, printed = build_verbose(cell, **shared)
    assert module.get() == 2.5
    assert "-include" not in cell_command(printed)  # the plain build's command


def test_an_error_reads_as_without_the_prelude(shared):
    """A compile error in a cell that had the prelude is reported from the plain
    compilation: the same message, at the same cell line."""
    options = shared
    cell = "#include <vector>\nint broken() { return undefined_name; }\n"
    with pytest.raises(CompileError) as with_prelude:
        pm.cpp(cell, **options)
    with pytest.raises(CompileError) as plain:  # -include rules the prelude out
        pm.cpp(cell, compile_args=options["compile_args"] + " -include /dev/null")
    assert with_prelude.value.lines == plain.value.lines == [2]
    assert str(with_prelude.value).splitlines()[:2] == str(plain.value).splitlines()[:2]
    assert "undefined_name" in str(with_prelude.value).splitlines()[1]


def test_a_cell_without_a_final_newline_and_ending_in_a_comment():
    """The cell's last line cannot swallow what polymagic appends after it."""
    module = pm.cpp("#include <vector>\nint seven() { return 7; } // no newline")
    assert module.seven() == 7


# -------------------------------------------------------- damaged or stale entries

def test_a_truncated_gch_is_bypassed_then_rebuilt():
    """A truncated .gch is found by the cache's size check: the cell builds without
    it (with a DamagedCacheEntry warning), and the header is precompiled again."""
    options = warmed("PM_TEST_TRUNCATED")
    entry = prelude_entry(prelude.STD_CORE, CppOptions.make(**options))
    gch = entry / f"{prelude.STD_CORE}.gch"
    with open(gch, "r+b") as stream:
        stream.truncate(gch.stat().st_size // 3)
    with pytest.warns(DamagedCacheEntry):
        module = pm.cpp(VECTOR_CELL + "// after truncation\n", **options)
    assert module.ramp(2).tolist() == [0.0, 1.0]
    prelude.wait()  # its third want started the precompilation again
    assert prelude_entry(prelude.STD_CORE, CppOptions.make(**options)) == entry
    module, printed = build_verbose(VECTOR_CELL + "// rebuilt\n", **options)
    assert module.ramp(1).tolist() == [0.0]
    assert f"-include {entry}" in cell_command(printed)


def test_a_gch_gxx_cannot_read_is_bypassed():
    """A .gch whose bytes were overwritten after the cache checked it in this process
    (same size, same record) makes g++ fail or crash: the cell is compiled again
    without it and works."""
    options = warmed("PM_TEST_GARBAGE")
    entry = prelude_entry(prelude.STD_CORE, CppOptions.make(**options))
    gch = entry / f"{prelude.STD_CORE}.gch"
    stat = gch.stat()
    with open(gch, "r+b") as stream:
        stream.seek(stat.st_size // 2)
        stream.write(os.urandom(4096))
    os.utime(gch, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # unnoticed by mtime
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DamagedCacheEntry)  # if the cache notices
        module = pm.cpp(VECTOR_CELL + "// garbage\n", **options)
    assert module.ramp(2).tolist() == [0.0, 1.0]


def test_a_changed_header_makes_the_gch_stale(tmp_path):
    """g++ does not check that the headers a .gch was made from are unchanged:
    polymagic does (size and mtime of each), discards the entry and builds without
    it. Here the changed header is a wrapper of <cstdint> in an -I folder, which the
    prelude reads instead of the system's."""
    wrapper = tmp_path / "cstdint"
    wrapper.write_text("#include_next <cstdint>\n")
    options = warmed("PM_TEST_STALE", include_dirs=[str(tmp_path)])
    entry = prelude_entry(prelude.STD_CORE, CppOptions.make(**options))
    record = json.loads((entry / prelude.DEPENDENCIES).read_text())
    assert str(wrapper) in record and any(path.endswith("/vector") for path in record)
    wrapper.write_text("#include_next <cstdint>\n#define PM_WRAPPED 1\n")
    module, printed = build_verbose(VECTOR_CELL + "// stale\n", **options)
    assert module.ramp(2).tolist() == [0.0, 1.0]
    assert "-include" not in cell_command(printed)
    assert not entry.exists()


def test_a_damaged_libclang_pch_is_bypassed():
    """A truncated libclang .pch is dropped by the cache's check; the cell is read
    without it."""
    options = warmed("PM_TEST_CLANG_DAMAGED")
    parsed = CppOptions.make(**options)
    cxx = find_compiler("c++")
    args = signatures.clang_args(cxx, parsed.std, parsed.include_dirs,
                                 parsed.preprocessor_flags())
    pch = prelude.libclang_prelude(args, prelude.STD_CORE)
    with open(pch, "r+b") as stream:
        stream.truncate(1000)
    with pytest.warns(DamagedCacheEntry):
        module = pm.cpp(VECTOR_CELL + "// clang damaged\n", **options)
    assert module.ramp(2).tolist() == [0.0, 1.0]


# ---------------------------------------------------------------- no compiler left

def _compilers_reading(folder: Path) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(folder) in command and "cell_module" in command:
            found.append(command)
    return found


def test_a_build_failing_after_gxx_started_leaves_no_compiler_waiting():
    """g++ starts before libclang has read the cell and waits for the trampolines at a
    pipe; when libclang's reading fails (a PM_PYTHON declaration polymagic refuses),
    the compiler is killed and nothing waits on the pipe."""
    cell = ("#include <vector>\n#include <polymagic.hpp>\n"
            "PM_PYTHON double refused(double* xs);\ndouble f() { return 1; }\n")
    with pytest.raises(CompileError, match="cannot be provided by Python"):
        pm.cpp(cell)
    cache = Path(os.environ["POLYMAGIC_CACHE_DIR"])
    assert _compilers_reading(cache) == []
    assert not list(cache.glob(".cpp_*"))  # no staging folder left behind


def test_a_stale_libclang_pch_is_discarded():
    """libclang refuses a .pch whose header changed since (here: its mtime moved);
    the cell is read without it and the entry is discarded, to be built again."""
    options = CppOptions.make(**warmed("PM_TEST_CLANG_STALE"))
    cxx = find_compiler("c++")
    args = signatures.clang_args(cxx, options.std, options.include_dirs,
                                 options.preprocessor_flags())
    pch = prelude.libclang_prelude(args, prelude.STD_CORE)
    stale = (pch.stat().st_ino, pch.stat().st_mtime_ns)  # a rebuilt file may reuse the inode
    header = Path(prelude.sources.NATIVE) / prelude.STD_CORE
    before = header.stat()
    try:
        os.utime(header, ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))
        assert compiler._read_with_prelude(VECTOR_CELL, args, prelude.STD_CORE) is None
        plan = compiler._read_signatures(VECTOR_CELL, options, cxx, prelude.STD_CORE)
    finally:
        os.utime(header, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert [function["name"] for function in plan["functions"]] == ["ramp"]
    prelude.wait()  # the entry was discarded; it may have been built again since
    assert not pch.exists() or (pch.stat().st_ino, pch.stat().st_mtime_ns) != stale


def test_no_named_pipe_is_left_in_the_cache_entry():
    """The pipe that handed g++ the trampolines is gone when the entry is published
    (a cache entry is copied and travels as plain files)."""
    module = pm.cpp(VECTOR_CELL + "// pipe\n")
    cache = Path(os.environ["POLYMAGIC_CACHE_DIR"])
    assert module.ramp(1).tolist() == [0.0]
    assert not [path for path in cache.rglob("*") if path.is_fifo()]
