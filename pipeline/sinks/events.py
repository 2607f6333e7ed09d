"""Pseudonymised events → zstd Parquet, Hive-partitioned ``source=…/event_date=…``.

One file per (batch, partition), named ``part-<batch stem>.parquet``: the stem derives from the
input position, so re-processing the same input overwrites the same files instead of adding
duplicates. Files are written atomically (see storage.fs).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from pipeline.schema import EVENT_SCHEMA, SCHEMA_VERSION
from pipeline.storage.fs import Location, write_parquet_atomic

ROW_GROUP_ROWS = 128 * 1024


@dataclass(frozen=True)
class WrittenFile:
    path: str
    rows: int
    bytes: int


def partition_dir(loc: Location, source: str, event_date: str) -> str:
    return loc.join(f"source={source}", f"event_date={event_date}")


def write_events(loc: Location, table: pa.Table, stem: str) -> list[WrittenFile]:
    """Write ``table`` (event columns + ``source`` + ``event_date``) partitioned; one file each."""
    if table.num_rows == 0:
        return []
    sources = table.column("source").to_pylist()
    dates = table.column("event_date").to_pylist()
    groups: dict[tuple[str, str], list[int]] = {}
    for i, key in enumerate(zip(sources, dates, strict=True)):
        groups.setdefault(key, []).append(i)
    body = table.select(EVENT_SCHEMA.names).cast(EVENT_SCHEMA)
    written: list[WrittenFile] = []
    for (source, event_date), rows in sorted(groups.items()):
        part = body if len(rows) == table.num_rows else body.take(pa.array(rows, pa.int64()))
        path = partition_dir(loc, source, event_date) + f"/part-{stem}.parquet"
        size = write_parquet_atomic(loc, path, part, row_group_size=ROW_GROUP_ROWS)
        written.append(WrittenFile(path, part.num_rows, size))
    return written


__all__ = ["SCHEMA_VERSION", "WrittenFile", "partition_dir", "write_events"]
