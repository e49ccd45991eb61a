"""Finding Julia (bridges/julia/locate.py) by juliacall's and juliapkg's own rules. No
Julia is needed: these tests check the rules on configuration and on the files juliapkg
and juliaup write, and the errors for configurations that cannot work."""
import json
import os
import sys

import pytest

from polymagic.bridges.julia import locate
from polymagic.bridges.julia.locate import JuliaInstall
from polymagic.errors import BridgeUnavailable

INSTALL_ADVICE = "install.julialang.org"


def locate_error() -> str:
    with pytest.raises(BridgeUnavailable) as info:
        locate.locate_julia()
    return str(info.value)


def test_find_julia_returns_none_when_nothing_is_installed(no_julia_env):
    """With no configured, juliapkg, juliaup or PATH Julia, find_julia() is None and the
    error says how to get Julia."""
    assert locate.find_julia() is None
    assert INSTALL_ADVICE in locate_error()


def test_nonexistent_configured_julia_names_the_variable(no_julia_env, monkeypatch):
    """PYTHON_JULIAPKG_EXE pointing nowhere: the error names the variable and the path and
    says to fix or unset it (not to install Julia); no fallback to another Julia."""
    missing = str(no_julia_env / "nowhere" / "julia")
    monkeypatch.setenv("PYTHON_JULIAPKG_EXE", missing)
    message = locate_error()
    assert f"PYTHON_JULIAPKG_EXE={missing!r}: no such file" in message
    assert "unset it" in message and INSTALL_ADVICE not in message
    assert locate.find_julia() is None


def test_non_julia_executable_is_refused(no_julia_env, monkeypatch):
    """PYTHON_JULIAPKG_EXE pointing at another program (Python): 'is not a Julia
    executable', naming it."""
    monkeypatch.setenv("PYTHON_JULIAPKG_EXE", sys.executable)
    message = locate_error()
    assert "is not a Julia executable" in message and sys.executable in message


def test_x_option_is_read_before_the_environment(no_julia_env, monkeypatch):
    """-X juliapkg-exe wins over PYTHON_JULIAPKG_EXE, and -X juliapkg-project over
    PYTHON_JULIAPKG_PROJECT, as juliapkg's get_config reads them."""
    from_x = str(no_julia_env / "from-x" / "julia")
    monkeypatch.setattr(sys, "_xoptions", {"juliapkg-exe": from_x,
                                           "juliapkg-project": str(no_julia_env / "xp")})
    monkeypatch.setenv("PYTHON_JULIAPKG_EXE", str(no_julia_env / "from-env" / "julia"))
    assert locate.juliapkg_project() == no_julia_env / "xp"
    message = locate_error()
    assert f"-X juliapkg-exe={from_x!r}" in message and "from-env" not in message


def test_relative_juliapkg_project_is_refused(no_julia_env, monkeypatch):
    """juliapkg requires an absolute PYTHON_JULIAPKG_PROJECT; the locator says so."""
    monkeypatch.setenv("PYTHON_JULIAPKG_PROJECT", "relative/env")
    with pytest.raises(BridgeUnavailable, match="PYTHON_JULIAPKG_PROJECT.*absolute"):
        locate.juliapkg_project()


@pytest.mark.parametrize("variable, missing", [
    ("PYTHON_JULIACALL_EXE", "PYTHON_JULIACALL_PROJECT"),
    ("PYTHON_JULIACALL_PROJECT", "PYTHON_JULIACALL_EXE"),
    ("PYTHON_JULIACALL_LIB", "PYTHON_JULIACALL_EXE"),
], ids=["exe-alone", "project-alone", "lib-alone"])
def test_juliacall_variables_need_their_partners(no_julia_env, monkeypatch, variable,
                                                 missing):
    """juliacall uses its own Julia only with EXE and PROJECT together (and raises
    otherwise): one alone is an error naming both, with no advice to install Julia."""
    monkeypatch.setenv(variable, str(no_julia_env))
    message = locate_error()
    assert f"{variable} is set without {missing}" in message
    assert "set together" in message and INSTALL_ADVICE not in message


def test_juliacall_julia_comes_before_juliapkg(no_julia_env, monkeypatch):
    """With PYTHON_JULIACALL_EXE and _PROJECT set, juliacall skips juliapkg: that
    executable is the one checked, even when PYTHON_JULIAPKG_EXE is set too."""
    monkeypatch.setenv("PYTHON_JULIACALL_EXE", sys.executable)
    monkeypatch.setenv("PYTHON_JULIACALL_PROJECT", str(no_julia_env))
    monkeypatch.setenv("PYTHON_JULIAPKG_EXE", str(no_julia_env / "elsewhere" / "julia"))
    message = locate_error()
    assert f"PYTHON_JULIACALL_EXE={sys.executable!r} is not a Julia executable" in message


def test_juliacall_bindir_stands_for_the_executable(no_julia_env, monkeypatch):
    """PYTHON_JULIACALL_BINDIR (with _PROJECT) means BINDIR/julia, as in juliacall."""
    monkeypatch.setenv("PYTHON_JULIACALL_BINDIR", str(no_julia_env / "bin"))
    monkeypatch.setenv("PYTHON_JULIACALL_PROJECT", str(no_julia_env))
    expected = os.path.join(str(no_julia_env / "bin"), "julia")
    assert f"PYTHON_JULIACALL_BINDIR={expected!r}: no such file" in locate_error()


def test_juliacall_project_must_exist(no_julia_env, monkeypatch):
    """A PYTHON_JULIACALL_PROJECT that is no folder is named (juliacall checks it too)."""
    monkeypatch.setenv("PYTHON_JULIACALL_EXE", sys.executable)
    monkeypatch.setenv("PYTHON_JULIACALL_PROJECT", str(no_julia_env / "no-project"))
    assert "PYTHON_JULIACALL_PROJECT" in locate_error() and "no such folder" in \
        locate_error()


@pytest.mark.parametrize("machine, arch", [
    ("x86_64", "x64"), ("AMD64", "x64"), ("arm64", "aarch64"), ("aarch64", "aarch64"),
    ("i386", "x86"), ("i686", "x86")])
def test_architecture_is_named_as_juliapkg_names_it(machine, arch):
    """platform.machine() maps to juliaup's names as in juliapkg's install_julia.py."""
    assert locate.juliaup_arch(machine) == arch


def write_juliaup(env, versions: dict) -> None:
    juliaup_dir = env / "juliaup-depot" / "juliaup"
    juliaup_dir.mkdir(parents=True)
    (juliaup_dir / "juliaup.json").write_text(json.dumps({"InstalledVersions": versions}))


def test_juliaup_julias_for_this_arch_newest_first(no_julia_env):
    """On an arm64 Mac (aarch64 to juliaup) the aarch64 builds are tried, 1.10 before 1.9;
    x64 builds and pre-releases are passed over."""
    write_juliaup(no_julia_env, {
        "1.9.4+0.aarch64.apple.darwin14": {"Path": "julia-1.9.4"},
        "1.10.2+0.aarch64.apple.darwin14": {"Path": "julia-1.10.2"},
        "1.11.0+0.x64.apple.darwin14": {"Path": "julia-x64"},
        "1.12.0-rc1+0.aarch64.apple.darwin14": {"Path": "julia-rc"}})
    paths = [path for path, _, _ in locate._juliaup_candidates(machine="arm64")]
    assert [os.path.basename(os.path.dirname(os.path.dirname(p))) for p in paths] == \
        ["julia-1.10.2", "julia-1.9.4"]


@pytest.mark.parametrize("version, openssl, accepted", [
    ((1, 10, 2), (3, 0, 0), False), ((1, 10, 3), (3, 0, 0), True),
    ((1, 11, 5), (3, 0, 0), True), ((1, 12, 0), (3, 0, 0), False),
    ((1, 12, 0), (3, 5, 0), True), ((2, 0, 0), (3, 5, 0), False)])
def test_found_julias_must_suit_juliapkg(version, openssl, accepted):
    """juliacall asks for ^1.10.3; juliapkg caps Julia at 1.11 when Python's OpenSSL is
    older than 3.5 (Julia 1.12 needs OpenSSL 3.5)."""
    assert locate.compatible(version, openssl) is accepted


def write_meta(env, **fields) -> str:
    prefix = env / "julia_env" / "pyjuliapkg"
    prefix.mkdir(parents=True)
    executable = str(env / "juliapkg-julia" / "bin" / "julia")
    meta = {"meta_version": locate.JULIAPKG_META_VERSION, "executable": executable,
            "override_executable": None, **fields}
    (prefix / "meta.json").write_text(json.dumps(meta))
    return executable


def test_a_julia_juliapkg_chose_itself_is_not_overridden(no_julia_env):
    """meta.json records no override: PYTHON_JULIAPKG_EXE stays unset for that Julia, so
    juliapkg's can_skip_resolve still matches and it does not resolve again."""
    executable = write_meta(no_julia_env)
    first = next(locate._juliapkg_candidates())
    assert first == (executable, first[1], None)
    assert locate.juliapkg_environment(JuliaInstall(executable, (1, 10, 4), first[1])) == {}


def test_a_recorded_override_is_kept(no_julia_env):
    """meta.json records the PYTHON_JULIAPKG_EXE of its last resolve: the same value is
    set again, so juliapkg does not resolve again."""
    executable = write_meta(no_julia_env)
    write_back = json.loads((no_julia_env / "julia_env" / "pyjuliapkg" / "meta.json")
                            .read_text())
    write_back["override_executable"] = executable
    (no_julia_env / "julia_env" / "pyjuliapkg" / "meta.json").write_text(
        json.dumps(write_back))
    path, source, juliapkg_exe = next(locate._juliapkg_candidates())
    assert juliapkg_exe == executable
    assert locate.juliapkg_environment(JuliaInstall(path, (1, 10, 4), source,
                                                    juliapkg_exe)) == \
        {"PYTHON_JULIAPKG_EXE": executable}


def test_a_meta_file_juliapkg_would_ignore_is_not_trusted(no_julia_env):
    """A meta.json of another format version is ignored (juliapkg resolves anew); the
    install prefix remains a candidate, and finding Julia there sets the override, so
    juliapkg's resolve cannot go looking for (and downloading) a newer Julia."""
    write_meta(no_julia_env, meta_version=locate.JULIAPKG_META_VERSION - 1)
    candidates = list(locate._juliapkg_candidates())
    assert [source for _, source, _ in candidates] == ["juliapkg's install prefix"]
    path, _, juliapkg_exe = candidates[0]
    assert juliapkg_exe == path


def test_julias_found_elsewhere_are_given_to_juliapkg():
    """A Julia found by juliaup or on PATH is handed to juliapkg (PYTHON_JULIAPKG_EXE),
    so juliapkg uses it rather than downloading one."""
    install = JuliaInstall("/opt/julia/bin/julia", (1, 10, 4), "PATH", "/opt/julia/bin/julia")
    assert locate.juliapkg_environment(install) == {"PYTHON_JULIAPKG_EXE":
                                                    "/opt/julia/bin/julia"}
