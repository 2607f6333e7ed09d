"""auditveil's local worker processes (Beam SDK harness): how they start, log and end.

Beam's harness logs at INFO from its first line and prints full tracebacks of failed bundles
straight to ``sys.stderr``; a traceback can quote a value. Here the process's stderr (the
Python object and file descriptor 2, for C libraries too) goes to /dev/null, and only our log
handler writes to the real stderr: errors only, one line naming the exception class. The driver
reports the failure to the user (see run/batch.py).

**Started early.** Each worker imports Beam and auditveil, about 1.2 s, so the driver starts
them (:class:`WarmWorkers`) before it imports Beam itself and builds the pipeline; each then
waits on a private Unix socket. Beam's runner still launches one command per worker
(:meth:`WarmWorkers.command`): a small process that hands the runner's endpoints to a waiting
worker and exits with that worker's status once it ends, so Beam's process bookkeeping stays
as it is.

While the run lasts, the driver asks :func:`worker_exit_error` whether a worker has exited:
Beam's FnApiRunner itself would wait for a lost worker for ever. A worker ends itself when the
driver is gone (:func:`exit_with`).
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from types import TracebackType

from pipeline.errors import AuditveilError, ConfigError

# Exit status of a worker that cannot import auditveil (see _WORKER_BOOTSTRAP).
_CANNOT_IMPORT = 3

_WORKER_BOOTSTRAP = """import signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's: it stops its workers
try:
    from pipeline.run.worker import wait_for_work
except ImportError:
    sys.stderr.write("auditveil worker: cannot import auditveil in this Python (not installed?)\\n")
    sys.exit(%d)
wait_for_work(listen_fd=%d, driver_pid=%d, run_dir=%r)
"""

# What Beam's runner starts per worker: hands its endpoints (the environment variables the SDK
# harness reads) to a waiting worker, then exits with that worker's exit status.
_HAND_OFF = """import json, os, signal, socket, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C: end quietly, as the worker does
keys = ("CONTROL_API_SERVICE_DESCRIPTOR", "LOGGING_API_SERVICE_DESCRIPTOR", "STATUS_API_SERVICE_DESCRIPTOR",
        "PIPELINE_OPTIONS", "PIPELINE_OPTIONS_FILE", "WORKER_ID", "SEMI_PERSISTENT_DIRECTORY", "RUNNER_CAPABILITIES")
try:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sys.argv[1])
    s.sendall(json.dumps({k: os.environ[k] for k in keys if k in os.environ}).encode() + b"\\n")
    status = s.makefile("rb").read().strip()
except OSError:
    sys.exit(1)
sys.exit(int(status) if status.isdigit() else 1)
"""


# A Unix socket's path must fit in 108 bytes; a deep TMPDIR would not leave room.
_SOCKET_PATH_MAX = 100


def _private_dir() -> str:
    """A new folder only this user can enter (mode 0700), in TMPDIR, or in /tmp if the socket's
    path in TMPDIR would be too long."""
    folder = tempfile.mkdtemp(prefix="auditveil-workers-")
    if len(os.path.join(folder, "hand-off").encode()) <= _SOCKET_PATH_MAX:
        return folder
    os.rmdir(folder)
    return tempfile.mkdtemp(prefix="auditveil-workers-", dir="/tmp")


class WarmWorkers:
    """``count`` worker processes, started now, each waiting for the runner's hand-off.

    A context manager: on leaving, workers still alive are stopped and the private folder (the
    socket and the exit-status file) is removed."""

    def __init__(self, count: int) -> None:
        self._closed = False
        self._dir = ""
        self._procs: list[subprocess.Popen[bytes]] = []
        self._listener: socket.socket | None = None
        try:
            self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self._dir = _private_dir()
            self.socket_path = os.path.join(self._dir, "hand-off")
            self.exit_file = os.path.join(self._dir, "exits")
            self._listener.bind(self.socket_path)
            self._listener.listen(count)
            fd = self._listener.fileno()
            bootstrap = _WORKER_BOOTSTRAP % (_CANNOT_IMPORT, fd, os.getpid(), self._dir)
            for _ in range(count):
                self._procs.append(subprocess.Popen([sys.executable, "-P", "-c", bootstrap], pass_fds=(fd,),
                                                    stdin=subprocess.DEVNULL))
        except OSError as exc:
            self.close()
            raise ConfigError(
                f"cannot start the worker processes ({type(exc).__name__}): check that the temporary "
                "folder (TMPDIR) is writable and the process limit, or run with --workers 1"
            ) from None

    def command(self) -> str:
        """The shell command Beam runs per worker. The shell records a failed hand-off's exit
        status in ``exit_file`` (see :func:`worker_exit_error`)."""
        return (f"{shlex.quote(sys.executable)} -I -S -c {shlex.quote(_HAND_OFF)} {shlex.quote(self.socket_path)} "
                f"|| {{ echo $? >> {shlex.quote(self.exit_file)}; }} 2>/dev/null")

    def exit_codes(self) -> list[int]:
        """Exit statuses of workers that have failed so far (a signal N as 128 + N); none once
        :meth:`close` has stopped them."""
        if self._closed:
            return []
        codes = [p.poll() for p in self._procs]
        return [128 - c if c < 0 else c for c in codes if c]

    def close(self) -> None:
        self._closed = True
        for p in self._procs:
            if p.poll() is None:
                p.terminate()
        for p in self._procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if self._listener is not None:
            self._listener.close()
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> WarmWorkers:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def worker_exit_error(exit_file: str, codes: list[int] | None = None) -> AuditveilError | None:
    """The error for a worker process that exited before the run finished, if one did: its
    exit status in ``codes`` (the workers' own) or recorded in ``exit_file`` (a hand-off's)."""
    codes = list(codes or [])
    try:
        with open(exit_file) as fh:
            codes += [int(x) for x in fh.read().split() if x.isdigit()]
    except FileNotFoundError:
        pass
    if not codes:
        return None
    if _CANNOT_IMPORT in codes:
        return ConfigError(
            "a worker process could not import auditveil: install it for this Python "
            "(scripts/setup.sh, or pip install -e . in the repository), or run with --workers 1"
        )
    code = codes[0]
    how = f"signal {code - 128}" if code > 128 else f"exit status {code}"
    return AuditveilError(
        f"a worker process stopped unexpectedly ({how}); auditveil stopped. Files already written "
        "are complete; re-run the same command to finish"
    )


class _ClassOnlyFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        exc = record.exc_info[1] if record.exc_info else None
        kind = type(exc).__name__ if exc is not None else "error"
        return f"auditveil worker: a pipeline stage failed ({kind})"


def quiet_logging() -> None:
    real_stderr = os.fdopen(os.dup(2), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    sys.stderr = open(os.devnull, "w")  # lives as long as the process
    handler = logging.StreamHandler(real_stderr)
    handler.setLevel(logging.ERROR)
    handler.setFormatter(_ClassOnlyFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]


def exit_with(driver_pid: int, run_dir: str = "", every: float = 1.0) -> None:
    """End this process soon after the driver's: Beam's harness would otherwise retry the dead
    control channel for ever, an orphan per worker after a driver was killed. A driver killed
    outright cannot remove its private folder (``run_dir``): the workers do."""

    def watch() -> None:
        while True:
            time.sleep(every)
            try:
                os.kill(driver_pid, 0)
            except ProcessLookupError:
                if run_dir:
                    shutil.rmtree(run_dir, ignore_errors=True)
                os._exit(1)
            except PermissionError:
                pass  # alive, under another user (a reused pid cannot be told apart)

    threading.Thread(target=watch, name="auditveil-driver-watch", daemon=True).start()


def wait_for_work(listen_fd: int, driver_pid: int, run_dir: str = "") -> None:
    """A warm worker: import what the harness and auditveil's stages need, wait for the
    runner's endpoints, run the SDK harness, and report its exit status to the hand-off."""
    quiet_logging()
    exit_with(driver_pid, run_dir)
    from apache_beam.runners.worker import sdk_worker_main

    import pipeline.run.stages
    import pipeline.sanitise
    import pipeline.sinks
    import pipeline.tokenise  # noqa: F401

    listener = socket.socket(fileno=listen_fd)
    conn, _ = listener.accept()
    listener.close()
    with conn, conn.makefile("rb") as reader:
        os.environ.update(json.loads(reader.readline()))
        threading.Thread(target=_end_if_abandoned, args=(conn,), name="auditveil-hand-off", daemon=True).start()
        status = 0
        try:
            sdk_worker_main.main(sys.argv)
        except SystemExit as stop:
            status = 0 if stop.code in (None, 0) else 1
        except BaseException:
            status = 1
            logging.getLogger(__name__).error("the SDK harness failed", exc_info=True)
        try:
            conn.sendall(b"%d\n" % status)
        except OSError:
            pass
    sys.exit(status)


def _end_if_abandoned(conn: socket.socket) -> None:
    """The runner stops a worker by killing the process it started (the hand-off): end too."""
    try:
        while conn.recv(1):
            pass
    except OSError:
        pass
    os._exit(0)
