"""Entry point of auditveil's local worker processes (Beam SDK harness), with safe logging.

Beam's harness logs at INFO from its first line and prints full tracebacks on failure; a
traceback can quote a value. Here only errors reach stderr, as one line naming the exception
class; the driver reports the failure to the user (see run/batch.py).
"""

from __future__ import annotations

import logging
import sys


class _ClassOnlyFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        exc = record.exc_info[1] if record.exc_info else None
        kind = type(exc).__name__ if exc is not None else "error"
        return f"auditveil worker: a pipeline stage failed ({kind})"


def quiet_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.ERROR)
    handler.setFormatter(_ClassOnlyFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]


def main() -> None:
    quiet_logging()
    from apache_beam.runners.worker import sdk_worker_main

    sdk_worker_main.main(sys.argv)


if __name__ == "__main__":
    main()
