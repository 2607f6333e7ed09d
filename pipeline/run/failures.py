"""Which of auditveil's own errors a runner failure carries, without echoing the runner's text.

Runners re-raise worker failures as their own exceptions whose text quotes stack frames (and
so, possibly, data). Only the exception *type* at the start of a traceback line is trusted —
``pipeline.errors.HsmUnavailable: …`` — never a name merely quoted from source code.
"""

from __future__ import annotations

import re

from pipeline.errors import AuditveilError

_RAISED = re.compile(r"(?m)^(?:pipeline\.errors\.)(HsmUnavailable|KeyNotFound|SinkError|InputError|ConfigError)\b")


def raised_errors(exc: BaseException) -> set[str]:
    """Names of auditveil errors raised in a worker, as reported in ``exc``."""
    if isinstance(exc, AuditveilError):
        return {type(exc).__name__}
    return set(_RAISED.findall(str(exc)))
