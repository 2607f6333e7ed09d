"""Bytes → records, for every input shape auditveil accepts.

One function, :func:`decode`, takes the bytes of a file, of a range of lines of a file, or
of one Kafka message, and yields :class:`Record`, :class:`Rejected` or :class:`Skipped`:

* gzip (by magic number), decompressed with a hard bound (gzip bombs are rejected);
* a CloudTrail document ``{"Records": [...]}``, pretty-printed or on one line;
* a CloudTrail digest file (recognised, skipped);
* bare events, one JSON object per line (EventBridge to Kafka, CloudTrail Lake exports), with
  the EventBridge envelope ``{"detail-type": …, "detail": {…}}`` unwrapped;
* Vault / OpenBao audit-device lines (``type`` request/response);
* a JSON array of events.

The kind of each record is detected per record (``fmt="auto"``) or forced. Nothing here logs
or raises with content: bad input becomes a :class:`Rejected` carrying the raw bytes, which the
dead-letter sink seals before writing.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from pipeline.sources.records import Record, Rejected, Skipped

Item = Record | Rejected | Skipped
FORMATS = ("auto", "cloudtrail", "vault")


@dataclass(frozen=True)
class Limits:
    max_record_bytes: int = 8 * 1024 * 1024
    max_decompressed_bytes: int = 1024 * 1024 * 1024
    max_depth: int = 64  # nesting of one record; deeper records are rejected (``too_deep``)


_CT_KEYS = ("eventVersion", "eventSource", "eventName", "eventID", "userIdentity", "eventTime")
_DIGEST_KEYS = ("digestStartTime", "digestEndTime", "digestPublicKeyFingerprint", "logFiles")


def _has_any(obj: dict[str, Any], keys: tuple[str, ...]) -> bool:
    # A few lookups; ``frozenset.isdisjoint(dict)`` would hash every key of the event instead.
    for k in keys:
        if k in obj:
            return True
    return False


def gunzip_bounded(data: bytes, limit: int) -> bytes:
    """Decompress gzip (all members) but never beyond ``limit`` bytes of output."""
    out: list[bytes] = []
    total = 0
    rest = data
    while rest:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        chunk = d.decompress(rest, limit - total + 1)
        total += len(chunk)
        out.append(chunk)
        if total > limit or d.unconsumed_tail:
            raise ValueError("too_large")
        if not d.eof:
            raise zlib.error("truncated gzip stream")
        rest = d.unused_data.lstrip(b"\x00")
        if rest[:2] != b"\x1f\x8b":
            break
    return b"".join(out)


def _dump(obj: Any, fallback: bytes) -> bytes:
    """``obj`` as JSON bytes for a dead letter; ``fallback`` (the enclosing document) when orjson
    cannot serialise it (nesting beyond its recursion limit, which its parser does accept)."""
    try:
        return orjson.dumps(obj)
    except orjson.JSONEncodeError:
        return fallback


def _nesting_within(obj: Any, limit: int, raw: bytes | None) -> bool:
    """True if ``obj`` is nested at most ``limit`` levels deep.

    Fast path: a JSON text with at most ``limit`` brackets cannot nest deeper than that.
    The walk is iterative, so hostile nesting cannot exhaust Python's stack.
    """
    if raw is None:
        try:
            raw = orjson.dumps(obj)
        except orjson.JSONEncodeError:
            return False  # deeper than orjson's own recursion limit (254)
    if raw.count(b"{") + raw.count(b"[") <= limit:
        return True
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return False
        children = node.values() if isinstance(node, dict) else node
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return True


def detect_kind(obj: dict[str, Any]) -> str | None:
    t = obj.get("type")
    if t in ("request", "response") and ("request" in obj or "auth" in obj):
        return "vault"
    if _has_any(obj, _CT_KEYS):
        return "cloudtrail"
    return None


def _unwrap(obj: dict[str, Any]) -> dict[str, Any]:
    """The CloudTrail event inside an EventBridge envelope, else the object itself."""
    detail = obj.get("detail")
    if "detail-type" in obj and isinstance(detail, dict) and _has_any(detail, _CT_KEYS):
        return detail
    return obj


def _one(obj: Any, fmt: str, position: str, raw: bytes | None, doc: bytes, limits: Limits) -> Item:
    """One JSON value → an item. ``raw`` is its own text if known; ``doc`` the enclosing text."""
    if not isinstance(obj, dict):
        return Rejected("shape", "unknown", position, raw if raw is not None else _dump(obj, doc))
    if not _nesting_within(obj, limits.max_depth, raw):
        return Rejected("too_deep", "unknown", position, raw if raw is not None else _dump(obj, doc))
    obj = _unwrap(obj)
    if _has_any(obj, _DIGEST_KEYS) and "eventName" not in obj:
        return Skipped("digest", position)
    if obj.get("Type") == "Notification" and "Message" in obj:
        return Skipped("notification", position)
    kind = detect_kind(obj) if fmt == "auto" else fmt
    if kind is None:
        return Rejected("unknown_format", "unknown", position, raw if raw is not None else _dump(obj, doc))
    return Record(kind, obj, position)


def _from_value(value: Any, fmt: str, position: str, raw: bytes, limits: Limits) -> Iterator[Item]:
    if isinstance(value, dict) and "Records" in value:
        records = value["Records"]
        if fmt == "vault" or not isinstance(records, list):
            yield Rejected("shape", "cloudtrail", position, raw)
            return
        for i, rec in enumerate(records):
            pos = f"{position}#record {i}"
            if not isinstance(rec, dict):
                yield Rejected("shape", "cloudtrail", pos, _dump(rec, raw))
            elif not _nesting_within(rec, limits.max_depth, None):
                yield Rejected("too_deep", "cloudtrail", pos, _dump(rec, raw))
            else:
                yield Record("cloudtrail", rec, pos)
        return
    if isinstance(value, list):
        for i, rec in enumerate(value):
            yield _one(rec, fmt, f"{position}#item {i}", None, raw, limits)
        return
    yield _one(value, fmt, position, raw, raw, limits)


def decode(data: bytes, fmt: str, position: str, limits: Limits = Limits(),
           first_line: int = 1) -> Iterator[Item]:
    """Decode one file, file range or message. See the module docstring."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gunzip_bounded(data, limits.max_decompressed_bytes)
        except ValueError:
            yield Rejected("too_large", "unknown", position, data[: limits.max_record_bytes])
            return
        except (zlib.error, EOFError):
            yield Rejected("gzip", "unknown", position, data[: limits.max_record_bytes])
            return
    body = data.strip()
    if not body:
        return
    if body[:1] in (b"{", b"[") and len(body) <= limits.max_decompressed_bytes:
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
        else:
            yield from _from_value(value, fmt, position, body, limits)
            return
    yield from _lines(data, fmt, position, limits, first_line)


def _lines(data: bytes, fmt: str, position: str, limits: Limits, first_line: int) -> Iterator[Item]:
    first = True
    for n, line in enumerate(data.split(b"\n"), start=first_line):
        line = line.strip()
        if not line:
            continue
        pos = f"{position}#line {n}"
        if len(line) > limits.max_record_bytes:
            yield Rejected("too_large", "unknown", pos, line[: limits.max_record_bytes])
            first = False
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            if first:
                # Not JSON lines at all: one broken document, one dead letter.
                yield Rejected("json", "unknown", position, data[: limits.max_decompressed_bytes])
                return
            yield Rejected("json", "unknown", pos, line)
            continue
        first = False
        if isinstance(value, list) or (isinstance(value, dict) and "Records" in value):
            yield from _from_value(value, fmt, pos, line, limits)
        else:
            yield _one(value, fmt, pos, line, line, limits)
