r"""Running one program in its own Python process, with limits: the sandbox of :mod:`augdiff.metrics.code_exec`.

A guard against accidents of generated code, **not a security boundary**: run code from an untrusted source in a
container or VM.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import IO, Literal

from augdiff.errors import AugdiffError

__all__ = ["Status", "ExecResult", "run_sandboxed"]

Status = Literal["passed", "failed", "timeout", "error"]


# Exit codes of the prelude; anything else (Python failing to start, the prelude itself failing) is "error".
_EXIT_FAILED = 3
_EXIT_ERROR = 4
_MAX_FILE_BYTES = 16 * 2**20  # RLIMIT_FSIZE: the largest file the program may write
_DETAIL_CHARS = 600  # how much of the end of stderr an ExecResult keeps

# Runs in the child (``python -I -B -c``) before the program; argv: address-space bytes, CPU seconds, file bytes.
# Limits are set here rather than in a ``preexec_fn``, which CPython documents as unsafe in a threaded parent
# (evaluate_code runs a thread pool); they apply before a line of the program runs and cannot be raised again.
_PRELUDE = r"""
import builtins, io, os, resource, shutil, socket, subprocess, sys, traceback
import _socket

def _limit(which, soft, hard):
    ceiling = resource.getrlimit(which)[1]
    if ceiling != resource.RLIM_INFINITY:
        soft, hard = min(soft, ceiling), min(hard, ceiling)
    resource.setrlimit(which, (soft, hard))

_cpu = int(sys.argv[2])
_limit(resource.RLIMIT_AS, int(sys.argv[1]), int(sys.argv[1]))
_limit(resource.RLIMIT_CPU, _cpu, _cpu + 1)  # SIGXCPU at the soft limit, SIGKILL a second later
_limit(resource.RLIMIT_FSIZE, int(sys.argv[3]), int(sys.argv[3]))
_limit(resource.RLIMIT_CORE, 0, 0)

_exit = os._exit
_source = sys.stdin.buffer.read().decode("utf-8")
sys.argv = ["<program>"]
try:
    _code = compile(_source, "<program>", "exec")
except (SyntaxError, ValueError) as _exc:
    traceback.print_exception(type(_exc), _exc, None)  # no traceback: the prelude's own frame says nothing
    sys.stderr.flush()
    _exit(__ERROR__)

def _refuse(name):
    def refuse(*args, **kwargs):
        raise PermissionError(f"{name} is disabled in the augdiff sandbox")
    return refuse

class _NoSocket(socket.socket):
    def __init__(self, *args, **kwargs):
        raise PermissionError("socket is disabled in the augdiff sandbox")

socket.socket = socket.SocketType = _socket.socket = _socket.SocketType = _NoSocket
subprocess.Popen._execute_child = _refuse("subprocess")  # every subprocess helper starts its child here
for _module, _names in (
    (socket, "socketpair fromfd create_connection create_server"),
    (_socket, "socketpair"),
    (shutil, "rmtree move chown"),
    (os, "system popen fork forkpty execv execve execvp execvpe execl execle execlp execlpe spawnv spawnve "
         "spawnvp spawnvpe spawnl spawnle spawnlp spawnlpe posix_spawn posix_spawnp kill killpg _exit "
         "remove unlink rmdir removedirs rename renames replace truncate chmod fchmod lchmod chown fchown "
         "lchown link symlink setuid setgid"),
):
    for _name in _names.split():
        if hasattr(_module, _name):
            setattr(_module, _name, _refuse(f"{_module.__name__}.{_name}"))

_open, _root = builtins.open, os.path.realpath(os.getcwd())

def _open_inside(file, mode="r", *args, **kwargs):
    if isinstance(file, (str, bytes, os.PathLike)) and any(flag in mode for flag in "wax+"):
        target = os.path.realpath(os.fsdecode(file))
        if os.path.commonpath([target, _root]) != _root:
            raise PermissionError(f"writing {target} outside the working directory is disabled in the sandbox")
    return _open(file, mode, *args, **kwargs)

builtins.open = io.open = _open_inside

_globals = {"__name__": "__main__", "__builtins__": builtins}
try:
    exec(_code, _globals)
except BaseException as _exc:
    _globals.clear()  # frees what the program held, so that reporting works after a MemoryError
    try:
        if isinstance(_exc, SystemExit):
            sys.stderr.write(f"the program called exit({_exc.code!r}) before its checks finished\n")
        else:
            traceback.print_exception(type(_exc), _exc, _exc.__traceback__.tb_next)  # from the program's frame on
        sys.stderr.flush()
    finally:
        _exit(__FAILED__)
try:
    sys.stdout.flush()
    sys.stderr.flush()
finally:
    _exit(0)
""".replace("__ERROR__", str(_EXIT_ERROR)).replace("__FAILED__", str(_EXIT_FAILED))


@dataclass
class ExecResult:
    """One run: ``passed`` (the program ran to its end), ``failed`` (an exception, an assert, ``exit()``, or a
    fatal signal), ``timeout`` (over the wall-clock or CPU limit), ``error`` (the program does not compile, or
    the sandbox did not start). ``detail``: the end of stderr; ``seconds``: wall time."""

    status: Status
    detail: str
    seconds: float


def _drain(stream: IO[bytes], tail: bytearray) -> None:
    """Reads a pipe to its end, keeping only its last bytes, so that a chatty program cannot fill memory."""
    while chunk := stream.read(65536):
        tail += chunk
        del tail[: -4 * _DETAIL_CHARS]


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone already


def run_sandboxed(program: str, timeout_s: float = 10.0, memory_mb: int = 1024) -> ExecResult:
    """Runs ``program`` in a separate Python process and reports how it ended.

    The child is ``sys.executable -I -B`` (isolated: no user site, no ``PYTHON*`` variables, no bytecode
    written), in a fresh temporary working directory (also its ``HOME`` and ``TMPDIR``) removed afterwards, with
    a near-empty environment, its own session (so a timeout kills it and anything it started, ``os.killpg``),
    stdin at end of file and stdout discarded. Limits: address space ``memory_mb``, CPU time the timeout plus one
    second, files written 16 MiB, no core dumps.

    Guard set (calls raise ``PermissionError``): socket creation (``socket.socket``, ``socketpair``,
    ``create_connection``, ``fromfd``: no network, and so no ``asyncio`` loops either); starting processes
    (``subprocess``, ``os.system``/``popen``/``fork``/``exec*``/``spawn*``/``posix_spawn``); ``os.kill``/
    ``killpg`` (``kill(-1, …)`` would reach every process of the user); deleting, renaming and re-permissioning
    files (``os.remove``/``unlink``/``rmdir``/``rename``/``replace``/``truncate``/``chmod``/``chown``/``link``,
    ``shutil.rmtree``/``move``); ``open()`` for writing outside the working directory; and ``os._exit`` and
    ``exit()``, so that a completion cannot pass by exiting early. These are accidents' guards, **not a security
    boundary**: ``ctypes``, the ``posix`` module, ``os.open`` or ``os.mkdir``/``makedirs`` reach around them.
    Run untrusted code in a container.

    Needs a POSIX system (the ``resource`` module and process groups).
    """
    if timeout_s <= 0 or memory_mb <= 0:
        raise ValueError(f"timeout_s and memory_mb must be positive, got {timeout_s} and {memory_mb}")
    if not hasattr(os, "killpg"):
        raise AugdiffError("running generated code needs a POSIX system (Linux or macOS) for its process limits")
    limits = [str(memory_mb * 2**20), str(math.ceil(timeout_s) + 1), str(_MAX_FILE_BYTES)]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="augdiff-exec-", ignore_cleanup_errors=True) as workdir:
        env = {"PATH": os.defpath, "HOME": workdir, "TMPDIR": workdir, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
        proc = subprocess.Popen(
            [sys.executable, "-I", "-B", "-c", _PRELUDE, *limits],
            cwd=workdir,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        assert proc.stdin is not None and proc.stderr is not None
        tail = bytearray()
        reader = threading.Thread(target=_drain, args=(proc.stderr, tail), daemon=True)
        reader.start()
        timed_out = False
        try:
            try:
                proc.stdin.write(program.encode("utf-8", "surrogatepass"))
                proc.stdin.close()
            except BrokenPipeError:
                pass  # the child died before reading; its stderr says why
            proc.wait(timeout=max(timeout_s - (time.perf_counter() - start), 0.0))
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            _kill_group(proc.pid)  # also after a normal exit: nothing the program started outlives it
            proc.wait()
            reader.join(timeout=1.0)
            if not reader.is_alive():  # else a process that left the group holds the pipe; leave it to the thread
                proc.stderr.close()
    seconds = time.perf_counter() - start
    detail = bytes(tail).decode("utf-8", "replace").strip()[-_DETAIL_CHARS:]
    code = proc.returncode
    if timed_out or code in (-signal.SIGXCPU, -signal.SIGKILL):
        return ExecResult("timeout", detail or f"killed after {timeout_s:g} s", seconds)
    if code == 0:
        return ExecResult("passed", detail, seconds)
    if code == _EXIT_FAILED:
        return ExecResult("failed", detail, seconds)
    if code < 0:
        return ExecResult("failed", f"{detail}\nkilled by signal {signal.Signals(-code).name}".strip(), seconds)
    return ExecResult("error", detail or f"the sandbox exited with code {code}", seconds)
