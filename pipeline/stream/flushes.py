"""Deterministic names for what one flush of a partition writes, and the flush record.

A flush writes the unbroken run of a partition's messages that starts at the partition's
committed offset. Its files are named after that first offset::

    <out>/source=<s>/event_date=<d>/part-<topic>-p<partition>-o<first offset>.parquet
    <out>/_dead_letters/part-<topic>-p<partition>-o<first offset>.parquet
    <out>/_stream/flushes/<topic>/p<partition>/o<first offset>.json   (the flush record)

Offsets are committed right after a flush is durable and before the next flush of that
partition is written, so at most one flush per partition lies beyond the committed offset.
After a crash, the replay starts at the committed offset and its first flush has the *same*
name: its files overwrite the old ones. The replay may cut the run at a different place
(more or fewer messages) and so land in other event dates; the flush record, written before
any data file, lists every file the earlier attempt may have written, and the ones the
replay does not rewrite are deleted. Nothing is left twice. Once every file is written the
record is marked ``done``: if the process dies between that and the offset commit, the next
flush finds the done record at the committed offset and only commits.

Lookup entries are the exception, by design: they are only ever added, under unique names,
and a token may have several entries that all open to the same value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from pipeline.errors import SinkError
from pipeline.storage.fs import Location, delete, read_bytes, write_bytes_atomic

FLUSH_DIR = "_stream/flushes"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def flush_stem(topic: str, partition: int, first_offset: int) -> str:
    return f"{_UNSAFE.sub('_', topic)}-p{partition:04d}-o{first_offset:020d}"


def record_path(out: Location, topic: str, partition: int, first_offset: int) -> str:
    return out.join(FLUSH_DIR, _UNSAFE.sub("_", topic), f"p{partition:04d}", f"o{first_offset:020d}.json")


def relative_path(out: Location, path: str) -> str:
    base = out.base.rstrip("/") + "/"
    return path[len(base):] if path.startswith(base) else path


@dataclass(frozen=True)
class FlushRecord:
    files: frozenset[str]  # paths relative to the output location
    end_offset: int  # the offset to commit once the flush is durable
    done: bool  # every listed file is written; only the offset commit may be missing


def read_record(out: Location, path: str) -> FlushRecord | None:
    from pyarrow import fs as pafs

    try:
        if out.fs.get_file_info(path).type != pafs.FileType.File:
            return None
    except OSError:
        raise SinkError("cannot read a stream flush record") from None
    try:
        data = orjson.loads(read_bytes(out, path))
        return FlushRecord(frozenset(str(p) for p in data.get("files", [])), int(data["end_offset"]),
                           bool(data.get("done", False)))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None  # a torn record is treated as absent: the flush is simply redone


def write_record(out: Location, path: str, files: Iterable[str], end_offset: int, done: bool) -> None:
    body = {"format": 1, "files": sorted(set(files)), "end_offset": end_offset, "done": done}
    write_bytes_atomic(out, path, orjson.dumps(body, option=orjson.OPT_SORT_KEYS))


def remove_leftovers(out: Location, listed: Iterable[str], written: set[str]) -> int:
    """Delete files an earlier attempt of this flush wrote and this one did not; returns how many."""
    gone = sorted(set(listed) - written)
    for rel in gone:
        delete(out, out.join(rel))
    return len(gone)


__all__ = [
    "FLUSH_DIR", "FlushRecord", "flush_stem", "read_record", "record_path", "relative_path", "remove_leftovers",
    "write_record",
]
