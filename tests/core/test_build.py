"""The build cache: private directory, hits across processes, concurrent builds."""
import os
import shutil
import stat
import subprocess
import sys
import textwrap
import time

import pytest

from polymagic import build

needs_compiler = pytest.mark.skipif(
    shutil.which("c++") is None and shutil.which("g++") is None,
    reason="no C++ compiler on PATH")

# A child process loads this cell and reports whether libclang or cffi's code generator
# were imported (they are only needed to build, never on a cache hit).
CHILD = textwrap.dedent("""
    import sys
    import polymagic as pm
    module = pm.cpp("int triple(int x) { return 3 * x; }\\n")
    print(module.triple(5), module.__file__, "clang.cindex" in sys.modules,
          "cffi.recompiler" in sys.modules)
""")


def _run_child(cache: str) -> subprocess.Popen:
    env = dict(os.environ, POLYMAGIC_CACHE_DIR=cache)
    return subprocess.Popen([sys.executable, "-c", CHILD], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


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


@needs_compiler
def test_two_processes_build_the_same_cell(tmp_path):
    """Two processes building one cell at once both succeed and share one entry."""
    cache = str(tmp_path)
    children = [_run_child(cache), _run_child(cache)]
    results = [_finish(child) for child in children]
    assert [r[0] for r in results] == ["15", "15"]
    entries = [p.name for p in tmp_path.iterdir() if p.name.startswith("cpp_")]
    assert len(entries) == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging


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
