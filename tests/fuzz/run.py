"""Run one fuzz target under atheris (libFuzzer): ``python -m tests.fuzz.run TARGET [libFuzzer args]``.

Examples::

    # 10 minutes on the decoder, new inputs in /tmp/c, seeds from the committed corpus
    python -m tests.fuzz.run decode /tmp/c tests/fuzz/corpus/decode -max_total_time=600
    # reproduce a crash file
    python -m tests.fuzz.run pipeline crash-0123abcd

The ``pipeline`` target uses the in-memory test key and needs
``AUDITVEIL_INSECURE_LOCAL_KEY=i-understand-this-is-for-tests``. ``scripts/fuzz`` wraps all this.
"""

from __future__ import annotations

import sys


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
    atheris.Setup(sys.argv, target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
