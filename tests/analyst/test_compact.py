"""``auditveil compact``: fewer files, same rows, exactly once for readers at every moment."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from pipeline.analyst import compact as compact_mod
from pipeline.analyst import dataset
from pipeline.analyst.compact import compact_partition
from pipeline.analyst.dataset import Partition
from pipeline.analyst.query import run_query
from pipeline.errors import ConfigError
from pipeline.storage import fs
from tests.analyst.helpers import make_events, write_partition
from tests.services.s3 import S3Server

ROOT = Path(__file__).resolve().parents[2]
P = Partition("cloudtrail", "2026-04-29")
IDS = "SELECT count(*) AS n, count(DISTINCT event_id) AS ids FROM events"


def _names(loc: fs.Location, partition: Partition = P) -> list[str]:
    return sorted(f.rsplit("/", 1)[-1] for f in fs.list_files(loc, loc.join(partition.rel), ".parquet"))


def test_compacts_many_files_into_one_with_the_same_rows(tmp_path: Path) -> None:
    out = str(tmp_path / "events")
    loc = fs.resolve(out)
    n = write_partition(loc, P.source, P.event_date, 12, 30, seed=1)
    other = write_partition(loc, "vault", P.event_date, 3, 10, seed=2)
    before = run_query(out, "SELECT * EXCLUDE (source, event_date) FROM events WHERE source = 'cloudtrail' "
                            "ORDER BY event_id").table
    result = compact_partition(out, P)
    assert (result.files_before, result.files_after, result.rows) == (12, 1, n)
    names = _names(loc)
    assert len(names) == 1 and dataset.COMPACTED.match(names[0])
    after = run_query(out, "SELECT * EXCLUDE (source, event_date) FROM events WHERE source = 'cloudtrail' "
                           "ORDER BY event_id").table
    assert after.equals(before)
    assert run_query(out, IDS).rows == [(n + other, n + other)]
    assert len(_names(loc, Partition("vault", P.event_date))) == 3  # other partitions untouched
    # The compacted file keeps the schema version and records what it replaced.
    info = dataset.compaction_info(loc, loc.join(P.rel, names[0]))
    assert info["parts"] == 1 and len(info["replaces"]) == 12
    again = compact_partition(out, P)
    assert again.files_after == 0 and "nothing to compact" in again.describe()


def test_splits_by_target_size(tmp_path: Path) -> None:
    out = str(tmp_path / "events")
    loc = fs.resolve(out)
    n = write_partition(loc, P.source, P.event_date, 10, 200, seed=3)
    size = sum(f.size for f in dataset.live_files(loc))
    result = compact_partition(out, P, target_bytes=size // 3)
    assert result.files_after >= 3 and result.rows == n
    assert run_query(out, IDS).rows == [(n, n)]


def test_crash_after_upload_before_delete_is_exact_and_finished_next_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = str(tmp_path / "events")
    loc = fs.resolve(out)
    n = write_partition(loc, P.source, P.event_date, 6, 20, seed=4)

    def crash(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(compact_mod.fs, "delete", crash)
    with pytest.raises(KeyboardInterrupt):
        compact_partition(out, P)
    monkeypatch.undo()
    assert len(_names(loc)) == 7  # inputs still there, plus the compacted file
    assert run_query(out, IDS).rows == [(n, n)]  # ... but every row counts once
    result = compact_partition(out, P)
    assert result.cleaned == 6
    assert len(_names(loc)) == 1 and run_query(out, IDS).rows == [(n, n)]


def test_incomplete_group_is_hidden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = str(tmp_path / "events")
    loc = fs.resolve(out)
    n = write_partition(loc, P.source, P.event_date, 4, 20, seed=5)
    # Part 1 of 2 of a group is visible (a compactor is still uploading part 2).
    files = dataset.live_files(loc)
    meta = {"v": 1, "group": "0123456789abcdef", "part": 1, "parts": 2, "replaces": [f.name for f in files]}
    compact_mod._write_part(loc, loc.join(P.rel, "compacted-0123456789abcdef-1-of-2.parquet"),
                            [make_events(20, P.event_date, seed=99)], meta)
    assert run_query(out, IDS).rows == [(n, n)]
    # A recent incomplete part is not deleted (its compactor may be running) ...
    assert compact_partition(out, P).cleaned == 0
    assert "compacted-0123456789abcdef-1-of-2.parquet" in _names(loc)
    # ... it stays hidden after the real compaction, and goes once it is old.
    assert run_query(out, IDS).rows == [(n, n)]
    monkeypatch.setattr(compact_mod, "ABANDONED_AFTER_SECONDS", -1)
    assert compact_partition(out, P).cleaned == 1
    assert "compacted-0123456789abcdef-1-of-2.parquet" not in _names(loc)
    assert run_query(out, IDS).rows == [(n, n)]


def test_compaction_while_a_reader_reads_on_s3(s3: S3Server) -> None:
    bucket = s3.make_bucket("compact")
    out = f"s3://{bucket}/events"
    storage = s3.storage()
    loc = fs.resolve(out, storage)
    n = write_partition(loc, P.source, P.event_date, 40, 25, seed=6)
    n += write_partition(loc, P.source, "2026-04-30", 30, 25, seed=7)
    seen: list[tuple[int, int]] = []
    errors: list[str] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                seen.append(run_query(out, IDS, storage).rows[0])
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        r1 = compact_partition(out, P, storage)
        r2 = compact_partition(out, Partition(P.source, "2026-04-30"), storage)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert (r1.files_after, r2.files_after) == (1, 1)
    assert errors == []
    assert len(seen) >= 2 and set(seen) == {(n, n)}
    assert run_query(out, IDS, storage).rows == [(n, n)]


def test_cli(tmp_path: Path) -> None:
    out = str(tmp_path / "events")
    loc = fs.resolve(out)
    write_partition(loc, P.source, P.event_date, 5, 10, seed=8)
    write_partition(loc, "vault", "2026-04-28", 3, 10, seed=9)
    env = {"PATH": "/usr/bin:/bin"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pipeline.cli", "compact", "--out", out, *args],
                              env=env, capture_output=True, text=True, timeout=60, cwd=ROOT)

    dry = cli("--all", "--dry-run")
    assert dry.returncode == 0 and dry.stdout.count("would compact") == 2
    assert len(_names(loc)) == 5
    done = cli("--partition", P.rel)
    assert done.returncode == 0, done.stderr
    assert "5 file(s)" in done.stdout and "-> 1 file(s)" in done.stdout and "50 rows" in done.stdout
    bad = cli("--partition", "cloudtrail/2026-04-29")
    assert bad.returncode == 2 and "source=<source>/event_date=YYYY-MM-DD" in bad.stderr
    assert "Traceback" not in bad.stderr
    with pytest.raises(ConfigError):
        Partition.parse("event_date=2026-04-29")
