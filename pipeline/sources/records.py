"""What the decode stage hands on: a decoded record, a rejected input, or a skipped file."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

SOURCE_KINDS = ("cloudtrail", "vault")

_ACCOUNT_RUN = re.compile(r"(?<!\d)\d{12}(?!\d)")
_EMAILISH = re.compile(r"[^/@\s]+@[^/@\s]+")


def redact_position(text: str) -> str:
    """A file path or object key made safe for logs and dead letters.

    CloudTrail export paths carry the account id twice (``AWSLogs/<account>/…`` and in the
    file name); those 12-digit runs and anything shaped like an e-mail address are masked.
    """
    return _EMAILISH.sub("<redacted>", _ACCOUNT_RUN.sub("<account>", text))


@dataclass(frozen=True, slots=True)
class Record:
    """One decoded audit record, still holding raw identifiers (in memory only)."""

    kind: str  # "cloudtrail" | "vault"
    payload: dict[str, Any]
    position: str  # redacted, safe to log


@dataclass(frozen=True, slots=True)
class Rejected:
    """Input that could not be turned into an event: becomes an encrypted dead letter."""

    error_class: str  # short stable label: json, gzip, shape, unknown_format, too_large, …
    source: str  # the source kind if known, else "unknown"
    position: str  # redacted, safe to log
    raw: bytes  # the offending bytes (sealed before they are written anywhere)


@dataclass(frozen=True, slots=True)
class Skipped:
    """Input recognised and deliberately not processed (CloudTrail digest files)."""

    reason: str
    position: str
