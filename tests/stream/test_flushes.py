"""Deterministic flush names and the flush record that lets a replay replace an earlier attempt."""

from __future__ import annotations

from pathlib import Path

from pipeline.storage.fs import resolve
from pipeline.stream.flushes import (
    flush_stem,
    read_record,
    record_path,
    relative_path,
    remove_leftovers,
    write_record,
)


def test_names_are_deterministic_and_safe() -> None:
    assert flush_stem("kms-audit", 3, 42) == "kms-audit-p0003-o00000000000000000042"
    assert flush_stem("a/b c", 0, 0).startswith("a_b_c-p0000-")


def test_record_round_trip_and_torn_record(tmp_path: Path) -> None:
    out = resolve(str(tmp_path))
    path = record_path(out, "t", 1, 100)
    assert read_record(out, path) is None
    write_record(out, path, {"source=vault/event_date=2026-01-01/part-x.parquet"}, 150, done=False)
    rec = read_record(out, path)
    assert rec is not None and rec.end_offset == 150 and not rec.done
    assert rec.files == {"source=vault/event_date=2026-01-01/part-x.parquet"}
    Path(path).write_bytes(b"{torn")
    assert read_record(out, path) is None  # redone, never trusted


def test_leftovers_of_an_earlier_attempt_are_removed(tmp_path: Path) -> None:
    out = resolve(str(tmp_path))
    old = tmp_path / "source=cloudtrail" / "event_date=2026-01-02" / "part-s.parquet"
    kept = tmp_path / "source=cloudtrail" / "event_date=2026-01-01" / "part-s.parquet"
    for p in (old, kept):
        p.parent.mkdir(parents=True)
        p.write_bytes(b"x")
    listed = {relative_path(out, str(old)), relative_path(out, str(kept))}
    removed = remove_leftovers(out, listed, {relative_path(out, str(kept))})
    assert removed == 1 and not old.exists() and kept.exists()
