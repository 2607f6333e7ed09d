"""A periodic one-line status for operators, and the Beam metrics behind it.

Counts only: no topic content, no event id, no identifier of any kind reaches the line. Beam
counters (namespace ``auditveil.stream``) carry the same numbers for the runner's UI.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter

from apache_beam.metrics import Metrics

NAMESPACE = "auditveil.stream"
STATUS_LOGGER = "auditveil.status"

log = logging.getLogger(STATUS_LOGGER)


def count(name: str, value: int = 1) -> None:
    """Add to a Beam counter and to this process's status board."""
    if value:
        Metrics.counter(NAMESPACE, name).inc(value)
        BOARD.add(name, value)


class StatusBoard:
    """Process-wide totals; :meth:`maybe_log` emits one line at most every ``interval`` seconds."""

    def __init__(self, interval: float = 10.0) -> None:
        self.interval = interval
        self._totals: Counter[str] = Counter()
        self._lag: dict[str, int] = {}
        self._lock = threading.Lock()
        self._last = time.monotonic()
        self._last_out = 0
        self._hsm_down = False

    def add(self, name: str, value: int) -> None:
        with self._lock:
            self._totals[name] += value

    def set_lag(self, partition_key: str, lag: int) -> None:
        with self._lock:
            self._lag[partition_key] = lag

    def set_hsm_down(self, down: bool) -> None:
        with self._lock:
            self._hsm_down = down

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            out = dict(self._totals)
            out["lag"] = sum(self._lag.values())
            out["partitions"] = len(self._lag)
            return out

    def line(self) -> str:
        t = self.snapshot()
        now = time.monotonic()
        with self._lock:
            rate = (t.get("events_out", 0) - self._last_out) / max(1e-6, now - self._last)
            self._last_out = t.get("events_out", 0)
            self._last = now
            hsm = "UNAVAILABLE" if self._hsm_down else "ok"
        lookups = t.get("hsm_calls", 0) + t.get("cache_hits", 0)
        hit = 100.0 * t.get("cache_hits", 0) / lookups if lookups else 0.0
        return (
            f"stream: messages_in={t.get('messages_in', 0)} events_in={t.get('events_in', 0)} "
            f"events_out={t.get('events_out', 0)} ({rate:.0f}/s) dead_letters={t.get('dead_letters', 0)} "
            f"duplicates={t.get('duplicates_dropped', 0)} late={t.get('late_messages', 0)} "
            f"flushes={t.get('window_flushes', 0)} lag={t['lag']} partitions={t['partitions']} "
            f"hsm={hsm} hsm_calls={t.get('hsm_calls', 0)} cache_hit={hit:.1f}% "
            f"commit_failures={t.get('commit_failures', 0)}"
        )

    def maybe_log(self) -> None:
        now = time.monotonic()
        with self._lock:
            due = now - self._last >= self.interval
        if due:
            log.info("%s", self.line())


BOARD = StatusBoard()
