"""auditveil's local worker processes (Beam SDK harness): how they start, log and end.

Beam's harness logs at INFO from its first line and prints full tracebacks of failed bundles
straight to ``sys.stderr``; a traceback can quote a value. Here the process's stderr (the
Python object and file descriptor 2, for C libraries too) goes to /dev/null, and only our log
handler writes to the real stderr: errors only, one line naming the exception class. The driver
reports the failure to the user (see run/batch.py).

The driver starts each worker with :func:`worker_command` and, while the run lasts, asks
:func:`worker_exit_error` whether one has exited: Beam's FnApiRunner itself would wait for a
lost worker for ever. A worker ends itself when the driver is gone (:func:`exit_with`).
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
import threading
import time

from pipeline.errors import AuditveilError, ConfigError

# Exit status of a worker that cannot import auditveil (see worker_command).
_CANNOT_IMPORT = 3

_WORKER_BOOTSTRAP = """import sys
try:
    from pipeline.run.worker import main
except ImportError:
    sys.stderr.write("auditveil worker: cannot import auditveil in this Python (not installed?)\\n")
    sys.exit(%d)
main(driver_pid=%d)
"""


def worker_command(exit_file: str) -> str:
    """The shell command of one worker process, run by the driver (this process). The shell
    records the worker's exit status in ``exit_file`` if it fails (see ``worker_exit_error``);
    the worker ends itself when the driver is gone."""
    bootstrap = _WORKER_BOOTSTRAP % (_CANNOT_IMPORT, os.getpid())
    return (f"{shlex.quote(sys.executable)} -P -c {shlex.quote(bootstrap)} "
            f"|| {{ echo $? >> {shlex.quote(exit_file)}; }} 2>/dev/null")


def worker_exit_error(exit_file: str) -> AuditveilError | None:
    """The error for a worker process that exited before the run finished, if one did."""
    try:
        with open(exit_file) as fh:
            codes = [int(x) for x in fh.read().split() if x.isdigit()]
    except FileNotFoundError:
        return None
    if _CANNOT_IMPORT in codes:
        return ConfigError(
            "a worker process could not import auditveil: install it for this Python "
            "(scripts/setup.sh, or pip install -e . in the repository), or run with --workers 1"
        )
    code = codes[0] if codes else 0
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


def exit_with(driver_pid: int, every: float = 1.0) -> None:
    """End this process soon after the driver's: Beam's harness would otherwise retry the dead
    control channel for ever, an orphan per worker after a driver was killed."""

    def watch() -> None:
        while True:
            time.sleep(every)
            try:
                os.kill(driver_pid, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:
                pass  # alive, under another user (a reused pid cannot be told apart)

    threading.Thread(target=watch, name="auditveil-driver-watch", daemon=True).start()


def main(driver_pid: int = 0) -> None:
    quiet_logging()
    if driver_pid > 0:
        exit_with(driver_pid)
    from apache_beam.runners.worker import sdk_worker_main

    sdk_worker_main.main(sys.argv)


if __name__ == "__main__":
    main()
