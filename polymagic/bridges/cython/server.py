"""The warm Cython server: a process that keeps Cython's compiler warm for the next
processes that use the same cache, so a new kernel's first cell does not pay Cython's
start-up (~0.7 s: its imports, its builtin scope and its lexer's tables) again.

It only turns a cell's .pyx into C (cythonize.run_cython, in the client's scratch
directory); the C compiler, the cache and the loading stay in the client. A process
that runs Cython cold starts one (`start_once`), after its own build; the server warms
up, then listens on a Unix socket in the cache directory (private, 0700), named by
what its compiler's output depends on (Python, Cython, polymagic's code), so a server
of another version is never asked. It serves one request at a time, answers only
processes of its own user, and exits after POLYMAGIC_CYTHON_SERVER_IDLE seconds
(default 300) without a request, or when its socket or cache directory is removed.
POLYMAGIC_CYTHON_SERVER=off turns it off. A client that cannot reach a server (none,
still warming up, gone mid-request) runs Cython itself, as before.

Protocol: one request per connection, each way a 4-byte length and a JSON object.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

from ...build import cache_dir, sources_digest
from ...config import flag, option
from ...errors import ConfigError

_SOCKET_PATH_MAX = 100
# Not `-m`: the package imports this module first, and runpy would run a second copy.
LAUNCH = "import sys; from polymagic.bridges.cython.server import main; main(sys.argv[1:])"
_STARTED: list[str] = []  # the socket path of the server this process started


def enabled() -> bool:
    """On unless POLYMAGIC_CYTHON_SERVER=off; Linux only (the peer check needs
    SO_PEERCRED)."""
    return hasattr(socket, "SO_PEERCRED") and flag("cython_server", True)


def idle_seconds() -> float:
    value = option("cython_server_idle", "300")
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"environment variable POLYMAGIC_CYTHON_SERVER_IDLE={value!r} "
                          "is not a number of seconds") from None


def socket_path(root: Path | None = None) -> Path | None:
    """Where this process's server listens, or None when switched off."""
    if not enabled():
        return None
    return (root or cache_dir()) / f"cython-server-{_identity()}.sock"


@contextlib.contextmanager
def _address(path: Path):
    """`path` as a socket address: a path too long for one (sun_path holds ~108 bytes)
    is reached through its directory's descriptor (/proc/self/fd/N/name, Linux)."""
    if len(os.fsencode(str(path))) < _SOCKET_PATH_MAX:
        yield str(path)
        return
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{directory}/{path.name}"
    finally:
        os.close(directory)


def _identity() -> str:
    """What Cython's output depends on besides the request: this Python, the Cython
    it imports, and polymagic's Cython room."""
    identity = _IDENTITY.get("value")
    if identity is None:
        import Cython  # the package root only (~10 ms): not the compiler
        parts = [sys.executable, sys.version, Cython.__version__, Cython.__file__,
                 sources_digest(Path(__file__).parent)]
        identity = _IDENTITY["value"] = hashlib.sha256(
            json.dumps(parts).encode()).hexdigest()[:16]
    return identity


_IDENTITY: dict[str, str] = {}


# ---- the client ---------------------------------------------------------------------

def ask(request: dict) -> dict | None:
    """The server's reply to a Cython request, or None when no server answers (the
    caller then runs Cython itself)."""
    path = socket_path()
    if path is None or not path.exists():
        return None
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            with _address(path) as address:
                connection.connect(address)
            if _peer_uid(connection) != os.getuid():
                return None  # not our own server: never take C code from it
            _send(connection, request)
            return _receive(connection)
    except (OSError, ValueError, struct.error):
        return None  # refused (a stale socket), or the server died mid-request


def start_once() -> None:
    """Start a server for this cache in the background: once per process, and only
    from an IPython session (a notebook's kernel is what gets restarted; a script or a
    test run starts none). It exits at once if another holds the cache's lock."""
    path = socket_path()
    if path is None or _STARTED or not _in_ipython():
        return
    _STARTED.append(str(path))
    command = [sys.executable, "-c", LAUNCH, str(path)]
    launcher = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, env={**os.environ, "POLYMAGIC_CACHE_DIR": str(path.parent)})
    # The launcher forks the server and exits at once; reaping it in a thread keeps it
    # from lingering as a zombie (the server itself is reparented, never a zombie).
    threading.Thread(target=launcher.wait, daemon=True,
                     name="polymagic cython server launcher").start()


def _in_ipython() -> bool:
    shell = sys.modules.get("IPython")
    return shell is not None and shell.get_ipython() is not None


# ---- the server ---------------------------------------------------------------------

def serve(path: Path, idle: float) -> None:
    """Warm Cython up, then answer requests on `path` until idle or orphaned."""
    import fcntl
    lock = open(f"{path}.lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return  # another server for this cache is warming up or running
    warming = threading.Thread(target=_warm_up, name="polymagic cython warm-up")
    warming.start()  # niced: the session that started it is likely still busy
    warming.join()
    path.unlink(missing_ok=True)  # a socket left by a server that was killed
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        with _address(path) as address:
            listener.bind(address)
        listener.listen(8)
        listener.settimeout(2.0)
        bound = path.stat().st_ino
        last_request = time.monotonic()
        while time.monotonic() - last_request < idle and _still_ours(path, bound):
            try:
                connection, _ = listener.accept()
            except socket.timeout:
                continue
            with connection:
                connection.settimeout(None)
                _answer(connection)
            last_request = time.monotonic()
        if _still_ours(path, bound):
            path.unlink(missing_ok=True)


def _warm_up() -> None:
    """Run Cython once on a tiny cell: imports, builtin scope and lexer are then built.
    At a lower priority (Linux: per thread, so requests are then served at the normal
    one): the process that started the server may still be running cells."""
    import tempfile
    try:
        thread = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, thread,
                       min(19, os.getpriority(os.PRIO_PROCESS, thread) + 10))
    except OSError:
        pass
    from .cythonize import run_cython
    with tempfile.TemporaryDirectory(prefix="polymagic-cython-warm-") as scratch:
        pyx = Path(scratch) / "_pm_warm.pyx"
        pyx.write_text("def f(int n):\n    return n\n")
        run_cython({"pyx": str(pyx), "name": "_pm_warm", "cplus": False,
                    "language_level": 3, "annotate": None, "shared_utility": None,
                    "include_path": []})


def _still_ours(path: Path, inode: int) -> bool:
    try:
        return path.stat().st_ino == inode
    except OSError:
        return False  # the socket or the whole cache directory was removed


def _answer(connection: socket.socket) -> None:
    from .cythonize import run_cython
    try:
        if _peer_uid(connection) != os.getuid():
            return
        request = _receive(connection)
        # As in the client: relative names, and .pxd files found along its sys.path
        # (a notebook may have added to it).
        os.chdir(request.pop("cwd"))
        own_path, sys.path[:] = list(sys.path), request.pop("sys_path")
        try:
            reply = run_cython(request)
        finally:
            sys.path[:] = own_path
        reply["server_pid"] = os.getpid()
        _send(connection, reply)
    except (OSError, ValueError, KeyError, struct.error):
        return  # the client went away or spoke garbage; it runs Cython itself


def _peer_uid(connection: socket.socket) -> int:
    credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                        struct.calcsize("3i"))
    return struct.unpack("3i", credentials)[1]


def _send(connection: socket.socket, message: dict) -> None:
    data = json.dumps(message).encode()
    connection.sendall(struct.pack("!I", len(data)) + data)


def _receive(connection: socket.socket) -> dict:
    size, = struct.unpack("!I", _read(connection, 4))
    return json.loads(_read(connection, size))


def _read(connection: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = connection.recv(min(left, 1 << 20))
        if not chunk:
            raise ValueError("connection closed mid-message")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def main(argv: list[str]) -> None:
    """The launcher (LAUNCH, argument: the socket path): fork the server and return."""
    path = Path(argv[0])
    if socket_path(path.parent) != path:
        return  # this Python imports another Cython than the client's: not its server
    if os.fork():
        return  # the launcher: its parent reaps it at once
    os.setsid()  # no terminal's Ctrl-C, no kernel's process group
    serve(path, idle_seconds())
