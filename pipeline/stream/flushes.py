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
(more or fewer messages) and so land in other event dates; the flush record lists every file
the earlier attempt wrote, and the ones the replay does not rewrite are deleted. Nothing is
left twice. (Lookup entries are the exception by design: they are only ever added, under
unique names, and a token may have several entries that all open to the same value.)
"""

from __future__ import annotations

import re

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


def read_record(out: Location, path: str) -> set[str]:
    from pyarrow import fs as pafs

    try:
        if out.fs.get_file_info(path).type != pafs.FileType.File:
            return set()
    except OSError:
        raise SinkError("cannot read a stream flush record") from None
    try:
        data = orjson.loads(read_bytes(out, path))
        return {str(p) for p in data.get("files", [])}
    except orjson.JSONDecodeError:
        return set()


def write_record(out: Location, path: str, files: set[str], end_offset: int) -> None:
    body = {"format": 1, "files": sorted(files), "end_offset": end_offset}
    write_bytes_atomic(out, path, orjson.dumps(body, option=orjson.OPT_SORT_KEYS))


def replace_earlier_attempt(out: Location, path: str, earlier: set[str], now_written: set[str],
                            end_offset: int) -> int:
    """Delete files an earlier attempt of this flush wrote and this one did not; returns how many."""
    gone = sorted(earlier - now_written)
    for rel in gone:
        delete(out, out.join(rel))
    if gone or earlier != now_written:
        write_record(out, path, now_written, end_offset)
    return len(gone)


__all__ = [
    "FLUSH_DIR", "flush_stem", "read_record", "record_path", "relative_path", "replace_earlier_attempt",
    "write_record",
]
