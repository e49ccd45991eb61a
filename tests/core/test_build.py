"""The build cache: private directory, hits across processes, concurrent builds that
overlap, integrity records, and artefacts checked before they are published."""
import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
import time
import warnings

import pytest

from polymagic import build
from polymagic.errors import CompileError, DamagedCacheEntry

needs_compiler = pytest.mark.skipif(
    shutil.which("c++") is None and shutil.which("g++") is None,
    reason="no C++ compiler on PATH")

# Run inside a build's `produce(staging)` by two processes at once: each marks its
# staging folder, waits until both builds are inside `produce` (a barrier on a shared
# folder), then fails if its folder holds the other build's mark. So the two builds
# always overlap, and a cache that let them share a folder (no private staging) fails.
BARRIER = textwrap.dedent("""
    import os, time
    from pathlib import Path

    def meet(staging, meeting):
        mark = Path(staging) / f"build-of-{os.getpid()}"
        mark.write_text("mine")
        Path(meeting, str(os.getpid())).touch()
        deadline = time.monotonic() + 120
        while len(os.listdir(meeting)) < 2:
            if time.monotonic() > deadline:
                raise SystemExit("the other build never reached produce()")
            time.sleep(0.01)
        time.sleep(0.2)  # both builds are inside produce() now: let the other write
        shared = [p.name for p in Path(staging).iterdir() if p.name.startswith("build-of-")
                  and p != mark]
        if shared:
            raise SystemExit(f"a build's folder holds another build's files: {shared}")
        mark.unlink()
""")

# A child process loads this cell and reports whether libclang or cffi's code generator
# were imported (they are only needed to build, never on a cache hit). With a meeting
# folder as argument, its C++ cell build waits there for another process's (BARRIER).
CHILD = BARRIER + textwrap.dedent("""
    import sys
    import polymagic as pm
    from polymagic import build
    if len(sys.argv) > 1:
        real_cached_build = build.cached_build
        def cached_build(key, artifact, produce, **options):
            def produce_with_barrier(staging):
                if key.startswith("cpp_"):
                    meet(staging, sys.argv[1])
                produce(staging)
            return real_cached_build(key, artifact, produce_with_barrier, **options)
        build.cached_build = cached_build
    module = pm.cpp("int triple(int x) { return 3 * x; }\\n")
    print(module.triple(5), module.__file__, "clang.cindex" in sys.modules,
          "cffi.recompiler" in sys.modules)
""")

# Two of these build one generic entry at once, meeting inside produce (BARRIER).
OVERLAP_CHILD = BARRIER + textwrap.dedent("""
    import sys
    from polymagic import build
    def produce(staging):
        meet(staging, sys.argv[1])
        (staging / "out.txt").write_text(f"built by {os.getpid()}")
    path = build.cached_build(build.cache_key("overlap", "one entry"), "out.txt", produce)
    print(path, path.read_text())
""")


def _run_child(cache: str, *arguments, script: str = CHILD) -> subprocess.Popen:
    env = dict(os.environ, POLYMAGIC_CACHE_DIR=cache)
    return subprocess.Popen([sys.executable, "-c", script, *arguments], env=env,
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _finish(child: subprocess.Popen) -> list[str]:
    out, err = child.communicate(timeout=300)
    assert child.returncode == 0, err
    return out.split()


def test_cache_dir_is_private(tmp_path, monkeypatch):
    """The cache directory is created with mode 0700."""
    monkeypatch.setenv("POLYMAGIC_CACHE_DIR", str(tmp_path / "fresh"))
    root = build.cache_dir()
    assert stat.S_IMODE(root.stat().st_mode) == 0o700


def test_unsafe_cache_dir_is_refused(tmp_path, monkeypatch):
    """A cache directory others can write is refused with CacheDirError."""
    unsafe = tmp_path / "shared"
    unsafe.mkdir()
    unsafe.chmod(0o777)
    monkeypatch.setenv("POLYMAGIC_CACHE_DIR", str(unsafe))
    with pytest.raises(build.CacheDirError, match="writable by other users"):
        build.cache_dir()


def test_cached_build_publishes_once(tmp_path, monkeypatch):
    """A second cached_build of the same key returns the entry without producing."""
    monkeypatch.setenv("POLYMAGIC_CACHE_DIR", str(tmp_path))
    calls = []

    def produce(staging):
        calls.append(staging)
        (staging / "out.txt").write_text("built")
    key = build.cache_key("test", "same inputs")
    first = build.cached_build(key, "out.txt", produce)
    second = build.cached_build(key, "out.txt", produce)
    assert first == second and first.read_text() == "built" and len(calls) == 1


def test_failed_build_publishes_nothing(tmp_path, monkeypatch):
    """When produce raises, no entry and no staging directory are left behind."""
    monkeypatch.setenv("POLYMAGIC_CACHE_DIR", str(tmp_path))

    def produce(staging):
        raise RuntimeError("compiler exploded")
    key = build.cache_key("test", "failing")
    with pytest.raises(RuntimeError):
        build.cached_build(key, "out.txt", produce)
    assert list(tmp_path.iterdir()) == []


@needs_compiler
def test_cache_hit_in_new_process(tmp_path):
    """A new process loads a built cell from the cache without libclang or cffi codegen."""
    cache = str(tmp_path)
    value, path, used_clang, used_codegen = _finish(_run_child(cache))
    assert (value, used_clang, used_codegen) == ("15", "True", "True")
    value, again, used_clang, used_codegen = _finish(_run_child(cache))
    assert (value, again, used_clang, used_codegen) == ("15", path, "False", "False")


def test_two_overlapping_builds_each_have_their_own_staging(tmp_path):
    """Two processes inside `produce` at the same moment (a barrier makes them meet)
    each build in a folder of their own; one entry is published, whole, and both get it."""
    cache, meeting = tmp_path / "cache", tmp_path / "meeting"
    meeting.mkdir()
    children = [_run_child(str(cache), str(meeting), script=OVERLAP_CHILD)
                for _ in range(2)]
    results = [_finish(child) for child in children]
    assert len(os.listdir(meeting)) == 2  # both builds really ran produce()
    assert results[0] == results[1]  # the same path, and the same (whole) content
    path, built_by = results[0][0], results[0][-1]
    assert built_by in os.listdir(meeting)
    assert os.listdir(cache) == [os.path.basename(os.path.dirname(path))]  # no staging


@needs_compiler
def test_two_processes_build_the_same_cell(tmp_path):
    """Two processes building one C++ cell at once (made to overlap inside `produce`)
    both succeed and share one entry, with no staging folder left."""
    cache, meeting = tmp_path / "cache", tmp_path / "meeting"
    meeting.mkdir()
    children = [_run_child(str(cache), str(meeting)) for _ in range(2)]
    results = [_finish(child) for child in children]
    assert len(os.listdir(meeting)) == 2  # both compiled the cell
    assert [r[0] for r in results] == ["15", "15"]
    assert results[0][1] == results[1][1]
    entries = [p.name for p in cache.iterdir() if p.name.startswith("cpp_")]
    assert len(entries) == 1
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no staging


def test_abandoned_staging_folders_are_removed(tmp_path, monkeypatch):
    """A staging folder left by a killed build (older than an hour) is removed by the
    next build of the same key; a recent one (a build in progress) is kept."""
    monkeypatch.setenv("POLYMAGIC_CACHE_DIR", str(tmp_path))
    key = "probe_" + "0" * 32
    old, recent = tmp_path / f".{key}-old", tmp_path / f".{key}-recent"
    old.mkdir()
    recent.mkdir()
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    build.cached_build(key, "out.txt", lambda d: (d / "out.txt").write_text("x"))
    assert not old.exists() and recent.exists()
    assert (tmp_path / key / "out.txt").read_text() == "x"


def test_missing_compiler_is_bridge_unavailable(monkeypatch, tmp_path):
    """A compiler that does not exist ($CXX) makes %%cpp raise BridgeUnavailable naming
    it, and a later build with a real compiler works."""
    import polymagic as pm
    monkeypatch.setenv("POLYMAGIC_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CXX", "no-such-compiler-anywhere")
    with pytest.raises(pm.BridgeUnavailable, match="no-such-compiler-anywhere"):
        pm.cpp("int one() { return 1; }")
    monkeypatch.delenv("CXX")
    assert pm.cpp("int one() { return 1; }").one() == 1


def _build_text_entry(content="built"):
    """An entry holding out.txt and its integrity record; the list of produce calls."""
    calls = []

    def produce(staging):
        calls.append(staging)
        (staging / "out.txt").write_text(content)
    key = build.cache_key("test", "integrity", content)
    return build.cached_build(key, "out.txt", produce), key, produce, calls


def test_entry_records_size_and_hash_of_each_file(tmp_path, monkeypatch):
    """A published entry carries the size and SHA-256 of every file it holds."""
    import hashlib
    monkeypatch.setenv("POLYMAGIC_CACHE_DIR", str(tmp_path))
    path, _, _, _ = _build_text_entry()
    record = json.loads((path.parent / build.RECORD).read_text())
    assert record["files"] == {
        "out.txt": [5, hashlib.sha256(b"built").hexdigest()]}


@pytest.mark.parametrize("damage, problem", [
    (lambda path: path.write_text("bui"), "out.txt has 3 bytes, 5 were published"),
    (lambda path: path.write_text("BUILT"), "out.txt differs from the file published"),
    (lambda path: path.unlink(), "out.txt is missing"),
    (lambda path: (path.parent / build.RECORD).write_text("{"),
     "integrity.json is unreadable"),
    (lambda path: (path.parent / build.RECORD).unlink(), "integrity.json is missing"),
])
def test_damaged_entry_is_dropped_with_a_warning_and_rebuilt(tmp_path, monkeypatch,
                                                            damage, problem):
    """A truncated, altered or missing file (or record) is found at the next hit: the
    entry is dropped with a DamagedCacheEntry warning naming it, and built again."""
    monkeypatch.setenv("POLYMAGIC_CACHE_DIR", str(tmp_path))
    path, key, produce, calls = _build_text_entry()
    damage(path)
    with pytest.warns(DamagedCacheEntry, match=problem) as caught:
        again = build.cached_build(key, "out.txt", produce)
    assert key in str(caught[0].message)
    assert again == path and path.read_text() == "built" and len(calls) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # healed: the next hit warns no more
        assert build.cached_build(key, "out.txt", produce) == path
    assert len(calls) == 2
    assert sorted(os.listdir(tmp_path)) == [key]  # the damaged copy is gone too


def test_same_size_damage_with_old_mtime_is_found_by_a_new_process(tmp_path, monkeypatch):
    """Damage that keeps the size and the mtime is found by the hash that every
    process computes at its first hit of an entry."""
    monkeypatch.setenv("POLYMAGIC_CACHE_DIR", str(tmp_path))
    path, key, _, _ = _build_text_entry()
    before = path.stat()
    with open(path, "r+b") as stream:
        stream.write(b"B")  # same size, same inode
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    script = textwrap.dedent(f"""
        import warnings
        from polymagic import build
        warnings.simplefilter("always")
        path = build.cached_build({key!r}, "out.txt",
                                  lambda d: (d / "out.txt").write_text("built"))
        print(path.read_text())
    """)
    finished = subprocess.run([sys.executable, "-c", script], capture_output=True,
                              text=True, timeout=120, check=True,
                              env=dict(os.environ, POLYMAGIC_CACHE_DIR=str(tmp_path)))
    assert finished.stdout.strip() == "built"
    assert "DamagedCacheEntry" in finished.stderr
    assert "out.txt differs from the file published (SHA-256)" in finished.stderr


@pytest.mark.parametrize("content, found", [
    (b"# 1 \"cell.c\"\nint x;\n", "text (no ELF file)"),
    (b"\x00\x01binary", "no ELF file"),
])
def test_a_so_that_is_not_a_shared_library_is_never_published(tmp_path, monkeypatch,
                                                              content, found):
    """An artefact named .so that is not an ELF shared library (e.g. the output of a
    compiler given -E) raises CompileError from the language given; nothing is cached."""
    monkeypatch.setenv("POLYMAGIC_CACHE_DIR", str(tmp_path))
    key = build.cache_key("test", "not a library", content)
    with pytest.raises(CompileError) as caught:
        build.cached_build(key, "module.so", lambda d: (d / "module.so").write_bytes(content),
                           language="Test (C compiler)")
    assert caught.value.language == "Test (C compiler)"
    assert f"module.so as {found} instead of a shared library" in str(caught.value)
    assert "-E" in str(caught.value)
    assert os.listdir(tmp_path) == []


@needs_compiler
def test_object_files_and_libraries_are_checked_by_elf_type(tmp_path, monkeypatch):
    """A real object file passes as .o and is refused as .so (ELF e_type differs)."""
    monkeypatch.setenv("POLYMAGIC_CACHE_DIR", str(tmp_path / "cache"))
    source = tmp_path / "one.c"
    source.write_text("int one(void) { return 1; }\n")

    def compile_object(staging, name):
        subprocess.run(["cc", "-c", "-fPIC", str(source), "-o", str(staging / name)],
                       check=True)
    as_object = build.cached_build(build.cache_key("test", "object"), "one.o",
                                   lambda d: compile_object(d, "one.o"))
    assert as_object.exists()
    with pytest.raises(CompileError, match="one.so as an object file instead of a shared"):
        build.cached_build(build.cache_key("test", "library"), "one.so",
                           lambda d: compile_object(d, "one.so"))


def test_a_build_that_writes_no_artefact_is_a_compile_error(tmp_path, monkeypatch):
    """A produce that leaves no artefact (say -o sent it elsewhere) raises CompileError."""
    monkeypatch.setenv("POLYMAGIC_CACHE_DIR", str(tmp_path))
    with pytest.raises(CompileError, match="wrote no out.so"):
        build.cached_build(build.cache_key("test", "nothing"), "out.so", lambda d: None)
    assert os.listdir(tmp_path) == []
