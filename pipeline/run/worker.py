"""Entry point of auditveil's local worker processes (Beam SDK harness), with safe logging.

Beam's harness logs at INFO from its first line and prints full tracebacks of failed bundles
straight to ``sys.stderr``; a traceback can quote a value. Here the process's stderr (the
Python object and file descriptor 2, for C libraries too) goes to /dev/null, and only our log
handler writes to the real stderr: errors only, one line naming the exception class. The driver
reports the failure to the user (see run/batch.py).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time


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
