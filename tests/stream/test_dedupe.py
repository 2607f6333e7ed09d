"""Upstream duplicates are dropped by event id within the horizon; re-reads are not duplicates."""

from __future__ import annotations

from pipeline.stream.dedupe import DedupeMemo, event_key


def test_event_key_follows_the_normalisers_event_id() -> None:
    ct = event_key("cloudtrail", {"eventID": "e-1"})
    assert ct is not None and len(ct) == 16
    assert event_key("cloudtrail", {"eventID": "e-1"}) == ct
    assert event_key("cloudtrail", {}) is None
    req = event_key("vault", {"type": "request", "request": {"id": "r-1"}})
    resp = event_key("vault", {"type": "response", "request": {"id": "r-1"}})
    assert req is not None and resp is not None and req != resp  # request and response are two events
    assert event_key("vault", {"type": "request"}) is None
    assert b"e-1" not in ct  # a digest, not the id


def test_same_id_elsewhere_is_a_duplicate_same_place_is_a_reread() -> None:
    memo = DedupeMemo(horizon_seconds=3600)
    key = event_key("cloudtrail", {"eventID": "e-1"})
    assert not memo.is_duplicate(key, ("t", 0, 5, 0), 1_000)
    assert not memo.is_duplicate(key, ("t", 0, 5, 0), 1_000)  # the same message read again
    assert memo.is_duplicate(key, ("t", 1, 9, 0), 2_000)  # delivered twice upstream
    assert not memo.is_duplicate(None, ("t", 0, 6, 0), 2_000)  # no id: never a duplicate


def test_the_horizon_forgets_old_ids() -> None:
    memo = DedupeMemo(horizon_seconds=10)
    key = event_key("cloudtrail", {"eventID": "e-1"})
    other = event_key("cloudtrail", {"eventID": "e-2"})
    assert not memo.is_duplicate(key, ("t", 0, 1, 0), 0)
    assert not memo.is_duplicate(other, ("t", 0, 2, 0), 60_000)  # time moves on; e-1 expires
    assert len(memo) == 1
    assert not memo.is_duplicate(key, ("t", 0, 3, 0), 60_001)


def test_the_memo_is_bounded() -> None:
    memo = DedupeMemo(horizon_seconds=3600, max_entries=100)
    for i in range(1_000):
        memo.is_duplicate(event_key("cloudtrail", {"eventID": f"e-{i}"}), ("t", 0, i, 0), 1_000)
    assert len(memo) <= 100


def test_zero_horizon_disables_dedupe() -> None:
    memo = DedupeMemo(horizon_seconds=0)
    key = event_key("cloudtrail", {"eventID": "e-1"})
    assert not memo.is_duplicate(key, ("t", 0, 1, 0), 0)
    assert not memo.is_duplicate(key, ("t", 1, 1, 0), 0)
