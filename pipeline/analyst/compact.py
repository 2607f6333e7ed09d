"""Compact a partition's many small files into a few large ones, safely while readers read.

Streaming windows leave one small file per window and partition; analysts' scans get slow
with thousands of them. :func:`compact_partition`:

1. lists the partition and takes the files a reader would read (:func:`.dataset.live_files`);
2. streams them, in name order, into ``compacted-<group>-<i>-of-<k>.parquet`` files of about
   ``target_bytes`` each, each uploaded atomically, each footer recording the group, ``k``
   and the names it replaces. ``<group>`` is a digest of the replaced names, so re-running
   after a crash rewrites the same files;
3. once all ``k`` parts are visible, deletes the replaced files.

Readers through :mod:`.dataset` see every row exactly once at every step (an incomplete
group is hidden; a complete group hides what it replaces), and a crash at any step leaves a
state the next run finishes. Plain globbing readers may see a row twice only between steps 2
and 3 (milliseconds); a reader whose file vanishes mid-scan is told so and re-runs.

Do not compact a partition that a running pipeline is still writing to with the same file
names (a replayed window would come back next to the compacted copy); compact closed days.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

import orjson

from pipeline.analyst import dataset
from pipeline.analyst.dataset import COMPACTION_KEY, DataFile, Partition
from pipeline.config import StorageSettings
from pipeline.errors import SinkError
from pipeline.storage import fs, retry

DEFAULT_TARGET_BYTES = 256 * 1024 * 1024
ROW_GROUP_ROWS = 128 * 1024
ABANDONED_AFTER_SECONDS = 3600


@dataclass(frozen=True)
class CompactionResult:
    partition: Partition
    files_before: int
    bytes_before: int
    files_after: int
    bytes_after: int
    rows: int
    cleaned: int  # leftovers of an interrupted earlier compaction, deleted

    def describe(self) -> str:
        if self.files_after == 0 and self.cleaned == 0:
            return f"{self.partition.rel}: {self.files_before} file(s), nothing to compact"
        return (f"{self.partition.rel}: {self.files_before} file(s), {_mb(self.bytes_before)} -> "
                f"{self.files_after} file(s), {_mb(self.bytes_after)}, {self.rows} rows"
                + (f"; removed {self.cleaned} leftover file(s)" if self.cleaned else ""))


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def _read_table(loc: fs.Location, path: str) -> Any:
    import pyarrow.parquet as pq

    def read() -> Any:
        with loc.fs.open_input_file(path) as fh:
            return pq.read_table(fh)

    return retry.call(read, storage=loc.storage, what="read a file to compact")


def _write_part(loc: fs.Location, path: str, tables: list[Any], meta: dict[str, Any]) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.schema import EVENT_SCHEMA

    schema = EVENT_SCHEMA.with_metadata({**(EVENT_SCHEMA.metadata or {}), COMPACTION_KEY: orjson.dumps(meta)})
    sink = pa.BufferOutputStream()
    with pq.ParquetWriter(sink, schema, compression="zstd") as writer:
        for t in tables:
            writer.write_table(t.select(EVENT_SCHEMA.names).cast(EVENT_SCHEMA), row_group_size=ROW_GROUP_ROWS)
    buf = sink.getvalue()
    fs.write_bytes_atomic(loc, path, buf.to_pybytes())
    return int(buf.size)


def compact_partition(
    out_uri: str, partition: Partition, storage: StorageSettings | None = None,
    target_bytes: int = DEFAULT_TARGET_BYTES, dry_run: bool = False,
) -> CompactionResult:
    """Compact one partition (see the module docstring). One compactor per partition at a time."""
    fs.check_reachable(fs.resolve(out_uri, storage), "reach the events bucket")
    loc = dataset.events_location(out_uri, storage)
    rel = partition.rel
    states = dataset.classify_files(loc, [f for f in dataset._data_files(loc) if f.partition == partition])
    live = states.live
    small = [f for f in live if f.size < target_bytes // 2]
    before = (len(live), sum(f.size for f in live))
    if len(small) <= 1:  # nothing to gain: zero or one small file
        cleaned = 0 if dry_run else _delete_leftovers(loc, states)
        return CompactionResult(partition, *before, 0, 0, 0, cleaned)
    inputs = sorted(small, key=lambda f: f.name)
    names = [f.name for f in inputs]
    group = hashlib.sha256("\0".join([rel, *names]).encode()).hexdigest()[:16]
    # Plan the parts by input size (compressed sizes are a good proxy for output sizes).
    plan: list[list[DataFile]] = [[]]
    acc = 0
    for f in inputs:
        if plan[-1] and acc + f.size > target_bytes:
            plan.append([])
            acc = 0
        plan[-1].append(f)
        acc += f.size
    k = len(plan)
    kept = [f for f in live if f not in inputs]
    if dry_run:
        return CompactionResult(partition, *before, k + len(kept), 0, 0, 0)
    rows = written = 0
    base = loc.join(rel)
    for i, members in enumerate(plan, start=1):
        tables = [_read_table(loc, f.path) for f in members]
        rows += sum(t.num_rows for t in tables)
        meta = {"v": 1, "group": group, "part": i, "parts": k, "replaces": names}
        written += _write_part(loc, f"{base}/compacted-{group}-{i}-of-{k}.parquet", tables, meta)
    # Every part is visible: the group now hides its inputs from readers; remove them.
    for f in inputs:
        fs.delete(loc, f.path)
    cleaned = _delete_leftovers(loc, states)
    return CompactionResult(partition, *before, k + len(kept), written + sum(f.size for f in kept),
                            rows, cleaned)


def _delete_leftovers(loc: fs.Location, states: dataset.FileStates) -> int:
    """Delete what an interrupted earlier compaction left behind.

    Files hidden by a complete group go at once. Parts of an incomplete group go only once
    they are older than ``ABANDONED_AFTER_SECONDS`` (another compactor may still be writing
    them); until then they are hidden from readers and harmless.
    """
    now = time.time()
    doomed = list(states.replaced) + [
        f for f in states.incomplete if f.mtime and now - f.mtime > ABANDONED_AFTER_SECONDS
    ]
    n = 0
    for f in doomed:
        try:
            fs.delete(loc, f.path)
            n += 1
        except SinkError:
            continue
    return n


def partitions(out_uri: str, storage: StorageSettings | None = None) -> list[Partition]:
    """Every partition of the dataset, sorted."""
    loc = dataset.events_location(out_uri, storage)
    return sorted({f.partition for f in dataset._data_files(loc)},
                  key=lambda p: (p.source, p.event_date))
