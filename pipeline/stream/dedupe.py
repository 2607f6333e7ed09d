"""Drop upstream duplicates (CloudTrail delivers some) by event id, within a bounded horizon.

The memo maps a digest of the event id (never the id itself) to where the event was first
seen: (topic, partition, offset, index in message). A record seen again *at the same place*
is a re-read (after a restart or a rewritten flush), not a duplicate, and passes; the same id
at another place within the horizon is a duplicate and is dropped (counted). Entries older
than the horizon, measured in Kafka record time, are forgotten, and the memo is also capped
in size. One memo is shared by every partition a worker process reads; it is not persisted,
so after a restart a duplicate of an event committed before the restart is not recognised.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any

Place = tuple[str, int, int, int]

MAX_ENTRIES = 2_000_000


def event_key(kind: str, payload: dict[str, Any]) -> bytes | None:
    """The digest of a record's event id (as the normalisers define event_id), or None."""
    if kind == "cloudtrail":
        ident = payload.get("eventID")
        text = ident if isinstance(ident, str) and ident else None
    elif kind == "vault":
        req = payload.get("request")
        rid = req.get("id") if isinstance(req, dict) else None
        text = f"{rid}:{payload.get('type')}" if isinstance(rid, str) and rid else None
    else:
        text = None
    if text is None:
        return None
    return hashlib.blake2b(f"{kind}\0{text}".encode("utf-8", "surrogatepass"), digest_size=16).digest()


class DedupeMemo:
    def __init__(self, horizon_seconds: int, max_entries: int = MAX_ENTRIES) -> None:
        self._horizon_ms = max(0, horizon_seconds) * 1000
        self._max = max_entries
        self._seen: OrderedDict[bytes, tuple[Place, int]] = OrderedDict()
        self._newest_ms = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._seen)

    def is_duplicate(self, key: bytes | None, place: Place, timestamp_ms: int) -> bool:
        if key is None or self._horizon_ms == 0:
            return False
        with self._lock:
            hit = self._seen.get(key)
            if hit is not None and timestamp_ms - hit[1] <= self._horizon_ms:
                return hit[0] != place
            self._seen[key] = (place, timestamp_ms)
            self._seen.move_to_end(key)
            if timestamp_ms > self._newest_ms:
                self._newest_ms = timestamp_ms
            self._expire()
            return False

    def _expire(self) -> None:
        cutoff = self._newest_ms - self._horizon_ms
        while self._seen:
            oldest_key, (_, ts) = next(iter(self._seen.items()))
            if ts >= cutoff and len(self._seen) <= self._max:
                break
            del self._seen[oldest_key]


_SHARED: dict[int, DedupeMemo] = {}
_SHARED_LOCK = threading.Lock()


def shared_memo(horizon_seconds: int) -> DedupeMemo:
    """The memo shared by all writers in this worker process (one per horizon setting)."""
    with _SHARED_LOCK:
        memo = _SHARED.get(horizon_seconds)
        if memo is None:
            memo = _SHARED[horizon_seconds] = DedupeMemo(horizon_seconds)
        return memo
