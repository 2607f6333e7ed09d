"""Run one fuzz target under atheris (libFuzzer): ``python -m tests.fuzz.run TARGET [libFuzzer args]``.

Examples::

    # 10 minutes on the decoder, new inputs in /tmp/c, seeds from the committed corpus
    python -m tests.fuzz.run decode /tmp/c tests/fuzz/corpus/decode -max_total_time=600
    # reproduce a crash file
    python -m tests.fuzz.run pipeline crash-0123abcd

The ``pipeline`` target uses the in-memory test key and needs
``AUDITVEIL_INSECURE_LOCAL_KEY=i-understand-this-is-for-tests``. ``AUDITVEIL_FUZZ_WATCHDOG=S``
(seconds) and ``AUDITVEIL_FUZZ_CURRENT=FILE`` add a per-input watchdog that dumps all stacks and
exits if one input runs longer than S, keeping that input in FILE. ``scripts/fuzz`` wraps all this.
"""

from __future__ import annotations

import faulthandler
import os
import sys
from collections.abc import Callable


def _watched(target: Callable[[bytes], None], seconds: float, current: str) -> Callable[[bytes], None]:
    """A per-input watchdog that works even when libFuzzer's own cannot.

    libFuzzer's -timeout is a SIGALRM that it ignores when the signal lands on a thread other
    than the fuzzing thread; pyarrow starts threads, so in the pipeline target a stuck input
    could hang the run silently. Python's faulthandler watchdog dumps every thread's stack and
    exits; the input being run is kept in ``current`` to reproduce it.
    """
    def run(data: bytes) -> None:
        if current:
            with open(current, "wb") as fh:
                fh.write(data)
        faulthandler.dump_traceback_later(seconds, exit=True)
        try:
            target(data)
        finally:
            faulthandler.cancel_dump_traceback_later()

    return run


def _budgeted(target: Callable[[bytes], None], seconds: float) -> Callable[[bytes], None]:
    """Stop after ``seconds`` with ``os._exit``, instead of libFuzzer's -max_total_time.

    libFuzzer ends a timed run with C ``exit()``, which runs native destructors (pyarrow's) under
    a live interpreter; in the pipeline target that sometimes hangs forever after "Done". A crash
    is unaffected: libFuzzer reports it and leaves with ``_Exit``.
    """
    import time

    start = time.monotonic()
    runs = 0

    def run(data: bytes) -> None:
        nonlocal runs
        target(data)
        runs += 1
        if time.monotonic() - start >= seconds:
            print(f"auditveil-fuzz: done, {runs} inputs in {time.monotonic() - start:.0f} s", file=sys.stderr,
                  flush=True)
            os._exit(0)

    return run


def main() -> None:
    import atheris

    if len(sys.argv) < 2 or sys.argv[1] not in ("decode", "normalise", "pipeline"):
        raise SystemExit("usage: python -m tests.fuzz.run decode|normalise|pipeline [libFuzzer args]")
    name = sys.argv.pop(1)
    with atheris.instrument_imports(include=["pipeline"]):
        from tests.fuzz.targets import TARGETS

        target = TARGETS[name]
        # Import (and so instrument) the modules the targets load lazily.
        import pipeline.normalise
        import pipeline.sanitise.sanitiser
        import pipeline.scan.scanner  # noqa: F401
    budget = [a for a in sys.argv if a.startswith("-max_total_time=")]
    if budget:
        sys.argv = [a for a in sys.argv if a not in budget]
        target = _budgeted(target, float(budget[-1].split("=", 1)[1]))
    watchdog = float(os.environ.get("AUDITVEIL_FUZZ_WATCHDOG", "0") or 0)
    if watchdog > 0:
        target = _watched(target, watchdog, os.environ.get("AUDITVEIL_FUZZ_CURRENT", ""))
    atheris.Setup(sys.argv, target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
