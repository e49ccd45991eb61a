"""Starting Julia (bridges/julia/startup.py and the engine's boot), without a Julia
runtime: the refusal when none is found, the environment juliacall reads, juliacall's
own option errors, and a failed start that is never retried.

The child-process tests watch the interpreter with an audit hook (sys.addaudithook):
every import of juliacall or juliapkg, every subprocess and every socket is recorded by
Python itself, so the checks hold however loaded the machine is (no timing).
"""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from polymagic.bridges.julia import startup
from polymagic.bridges.julia.locate import HOW_TO_GET_JULIA, JuliaInstall
from polymagic.errors import BridgeUnavailable, ConfigError

WATCHED = """
import json, os, sys
events = {"imports": [], "processes": [], "sockets": [], "autoload_at_import": None}
def watch(event, args):
    if event == "import" and args[0].split(".")[0] in ("juliacall", "juliapkg"):
        events["imports"].append(args[0])
        if args[0] == "juliacall":
            events["autoload_at_import"] = os.environ.get(
                "PYTHON_JULIACALL_AUTOLOAD_IPYTHON_EXTENSION")
    elif event in ("subprocess.Popen", "os.system", "os.posix_spawn", "os.fork",
                   "os.exec"):
        events["processes"].append(str(args[0]))
    elif event in ("socket.connect", "socket.getaddrinfo"):
        events["sockets"].append(str(args[1:]))
sys.addaudithook(watch)
"""


def run_child(script: str, env_dir, **variables) -> dict:
    """Run `script` (after the watcher) in a fresh Python where no Julia can be found;
    return the watcher's events plus what the script put in `result`."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("PYTHON_JULIA", "POLYMAGIC_JULIA", "JULIA"))}
    (env_dir / "bin").mkdir(exist_ok=True)
    env.update(PATH=str(env_dir / "bin"), HOME=str(env_dir / "home"),
               JULIAUP_DEPOT_PATH=str(env_dir / "juliaup-depot"),
               PYTHON_JULIAPKG_PROJECT=str(env_dir / "julia_env"), **variables)
    body = WATCHED + "result = {}\n" + textwrap.dedent(script) + \
        "\nprint(json.dumps({**events, **result}))\n"
    done = subprocess.run([sys.executable, "-c", body], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_no_julia_is_refused_without_juliacall_processes_or_network(tmp_path):
    """With no Julia, the first Julia call raises BridgeUnavailable saying how to get
    one, having imported neither juliacall nor juliapkg, started no process, opened no
    socket and created no julia_env folder; a second call fails the same way."""
    seen = run_child("""
        import polymagic as pm
        messages = []
        for _ in range(2):
            try:
                pm.julia.eval("1 + 1")
            except pm.BridgeUnavailable as error:
                messages.append(str(error))
        result["messages"] = messages
        result["started"] = pm.julia.is_started()
    """, tmp_path)
    assert seen["imports"] == [] and seen["processes"] == [] and seen["sockets"] == []
    assert len(seen["messages"]) == 2 and not seen["started"]
    for message in seen["messages"]:
        assert "juliaup" in message and "PYTHON_JULIAPKG_EXE" in message
        assert "POLYMAGIC_JULIA_AUTOINSTALL" in message
    assert not (tmp_path / "julia_env").exists()


def test_bad_juliacall_option_is_a_config_error_raised_once(tmp_path):
    """With downloads allowed but a bad PYTHON_JULIACALL_HANDLE_SIGNALS, juliacall's own
    option check fails: a ConfigError naming the variable (not advice to install Julia).
    The environment told juliacall not to load its %julia magic before the import; the
    next call raises the same error without importing juliacall again (juliacall cannot
    start Julia twice in one process); nothing was downloaded or run."""
    seen = run_child("""
        import polymagic as pm
        from polymagic.errors import ConfigError
        errors = []
        for _ in range(2):
            try:
                pm.julia.eval("1")
            except ConfigError as error:
                errors.append(error)
        result["messages"] = [str(error) for error in errors]
        result["same_object"] = len(errors) == 2 and errors[0] is errors[1]
    """, tmp_path, POLYMAGIC_JULIA_AUTOINSTALL="yes", PYTHON_JULIAPKG_OFFLINE="yes",
        PYTHON_JULIACALL_HANDLE_SIGNALS="maybe")
    assert seen["imports"] == ["juliacall"], seen["imports"]
    assert seen["autoload_at_import"] == "no"
    assert seen["same_object"]
    message = seen["messages"][0]
    assert "PYTHON_JULIACALL_HANDLE_SIGNALS=maybe" in message and "restart" in message
    assert "juliaup" not in message
    assert seen["processes"] == [] and seen["sockets"] == []
    assert not (tmp_path / "julia_env").exists()


def test_environment_is_set_first_when_no_julia_is_found(no_julia_env, monkeypatch):
    """juliacall's magic is switched off before anything else: when Julia is missing and
    downloads are refused, and when downloads are allowed (juliacall imported next)."""
    for autoinstall, expect_error in (("no", True), ("yes", False)):
        monkeypatch.setenv("POLYMAGIC_JULIA_AUTOINSTALL", autoinstall)
        monkeypatch.delenv(startup.AUTOLOAD_VARIABLE, raising=False)
        if expect_error:
            with pytest.raises(BridgeUnavailable):
                startup.prepare_environment()
        else:
            assert startup.prepare_environment() is None
        assert os.environ[startup.AUTOLOAD_VARIABLE] == "no"
        assert "PYTHON_JULIAPKG_EXE" not in os.environ


def test_a_users_autoload_choice_is_kept(no_julia_env, monkeypatch):
    """PYTHON_JULIACALL_AUTOLOAD_IPYTHON_EXTENSION set by the user is left as it is."""
    monkeypatch.setenv("POLYMAGIC_JULIA_AUTOINSTALL", "yes")
    monkeypatch.setenv(startup.AUTOLOAD_VARIABLE, "yes")
    startup.prepare_environment()
    assert os.environ[startup.AUTOLOAD_VARIABLE] == "yes"


@pytest.mark.parametrize("raised", [
    ValueError("PYTHON_JULIACALL_THREADS=many: expecting an int or auto"),
    ValueError("-Xjuliacall-compile=fast: expecting one of yes, no, all, min"),
    ValueError("-X juliapkg-offline must be one of: yes, no"),
    Exception("PYTHON_JULIAPKG_PROJECT must be an absolute path"),
], ids=["juliacall-env", "juliacall-x", "juliapkg-x", "juliapkg-env"])
def test_option_errors_of_juliacall_and_juliapkg_are_config_errors(raised):
    """The messages juliacall's option() and juliapkg's get_config() raise name the
    option; such a failure is a ConfigError quoting it, never 'install Julia'."""
    error = startup.startup_error(raised, None)
    assert isinstance(error, ConfigError) and str(raised) in str(error)
    assert HOW_TO_GET_JULIA not in str(error)


def test_other_start_failures_say_what_to_do():
    """Without a Julia found (a download was allowed), a failure says how to get Julia;
    with one found, it names that Julia and PythonCall's first install instead."""
    missing = startup.startup_error(Exception("could not find Julia"), None)
    assert isinstance(missing, BridgeUnavailable) and HOW_TO_GET_JULIA in str(missing)
    found = JuliaInstall("/opt/julia/bin/julia", (1, 10, 4), "PATH", "/opt/julia/bin/julia")
    failed = startup.startup_error(Exception("PythonCall.jl did not start properly"), found)
    assert isinstance(failed, BridgeUnavailable)
    assert "Julia 1.10.4 (/opt/julia/bin/julia)" in str(failed)
    assert "PythonCall" in str(failed) and HOW_TO_GET_JULIA not in str(failed)
