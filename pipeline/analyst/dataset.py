"""The pseudonymised events dataset as one table, exactly once even while it is being compacted.

The dataset under ``--out`` is plain Hive-partitioned Parquet
(``source=<source>/event_date=YYYY-MM-DD/*.parquet``), readable by DuckDB, Polars and pyarrow
without options. Names starting with ``_`` or ``.`` (``_dead_letters/``, ``_runs/``,
``_manifest/``, temporary files) are never data.

Compaction (:mod:`.compact`) replaces many small files of a partition with a few
``compacted-<group>-<i>-of-<k>.parquet`` files, whose Parquet footers record the group and
the names they replace. :func:`live_files` applies one rule, which makes every reader that
goes through it (``auditveil query``, :func:`open_events`) see each row exactly once at every
instant of a compaction, and after a crash in the middle of one:

* a group whose ``k`` parts are all visible hides every file it replaces;
* the visible parts of an incomplete group are themselves hidden.

Readers that glob the files directly see the same rows except during the milliseconds
between a compacted file becoming visible and the deletion of the files it replaces.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from pipeline.config import StorageSettings
from pipeline.storage import fs, retry

EVENTS_DIR = "events"
COMPACTION_KEY = b"auditveil.compaction"
COMPACTED = re.compile(r"^compacted-(?P<group>[0-9a-f]{16})-(?P<i>\d+)-of-(?P<k>\d+)\.parquet$")
PARTITION = re.compile(r"^source=(?P<source>[^/]+)/event_date=(?P<date>[^/]+)$")


@dataclass(frozen=True)
class Partition:
    source: str
    event_date: str

    @property
    def rel(self) -> str:
        return f"source={self.source}/event_date={self.event_date}"

    @classmethod
    def parse(cls, text: str) -> Partition:
        m = PARTITION.match(text.strip().strip("/"))
        if m is None:
            from pipeline.errors import ConfigError

            raise ConfigError("a partition is written source=<source>/event_date=YYYY-MM-DD")
        return cls(m["source"], m["date"])


@dataclass(frozen=True)
class DataFile:
    path: str  # full path inside the location's filesystem
    partition: Partition
    name: str
    size: int
    mtime: float = 0.0  # seconds since the epoch, 0 when unknown


def events_location(out_uri: str, storage: StorageSettings | None = None) -> fs.Location:
    """The location of the partitions: ``<out>`` itself, or ``<out>/events`` when the dataset
    keeps its partitions there (with the pipeline's own ``_…`` folders beside, not inside)."""
    from pyarrow import fs as pafs

    loc = fs.resolve(out_uri, storage)

    def top() -> list[Any]:
        selector = pafs.FileSelector(loc.base, recursive=False, allow_not_found=True)
        return list(loc.fs.get_file_info(selector))

    infos = retry.call(top, storage=loc.storage, what="list the events dataset")
    names = {i.path.rsplit("/", 1)[-1] for i in infos if i.type == pafs.FileType.Directory}
    if EVENTS_DIR in names and not any(n.startswith("source=") for n in names):
        return dataclasses.replace(loc, base=loc.join(EVENTS_DIR))
    return loc


def _data_files(loc: fs.Location) -> list[DataFile]:
    """Every Parquet file inside a ``source=…/event_date=…`` directory, hidden ones excluded."""
    from pyarrow import fs as pafs

    def ls() -> list[Any]:
        selector = pafs.FileSelector(loc.base, recursive=True, allow_not_found=True)
        return list(loc.fs.get_file_info(selector))

    infos = retry.call(ls, storage=loc.storage, what="list the events dataset")
    base = loc.base.rstrip("/") + "/"
    out: list[DataFile] = []
    for info in infos:
        if info.type != pafs.FileType.File or not info.path.startswith(base):
            continue
        rel = info.path[len(base):]
        head, _, name = rel.rpartition("/")
        m = PARTITION.match(head)
        if m is None or not name.endswith(".parquet") or name[:1] in "._":
            continue
        mtime = info.mtime.timestamp() if info.mtime is not None else 0.0
        out.append(DataFile(info.path, Partition(m["source"], m["date"]), name, int(info.size or 0), mtime))
    out.sort(key=lambda f: f.path)
    return out


def compaction_info(loc: fs.Location, path: str) -> dict[str, Any]:
    """The compaction record in a compacted file's footer (group, parts, replaces)."""
    import pyarrow.parquet as pq

    def read() -> dict[str, Any]:
        with loc.fs.open_input_file(path) as fh:
            meta = pq.read_metadata(fh).metadata or {}
        raw = meta.get(COMPACTION_KEY)
        return dict(orjson.loads(raw)) if raw else {}

    return retry.call(read, storage=loc.storage, what="read a compacted file's footer")


@dataclass(frozen=True)
class FileStates:
    live: list[DataFile]
    replaced: list[DataFile]  # hidden by a complete compaction group (safe to delete)
    incomplete: list[DataFile]  # parts of a group still being written (or abandoned)


def classify_files(loc: fs.Location, files: Iterable[DataFile] | None = None) -> FileStates:
    """Split files into live ones and the two kinds a reader must skip."""
    files = list(_data_files(loc) if files is None else files)
    by_partition: dict[Partition, list[DataFile]] = {}
    for f in files:
        by_partition.setdefault(f.partition, []).append(f)
    states = FileStates([], [], [])
    for members in by_partition.values():
        groups: dict[str, list[DataFile]] = {}
        for f in members:
            m = COMPACTED.match(f.name)
            if m:
                groups.setdefault(m["group"], []).append(f)
        replaced: set[str] = set()
        incomplete: set[str] = set()
        for group, parts in groups.items():
            k = int(COMPACTED.match(parts[0].name)["k"])  # type: ignore[index]
            if len({COMPACTED.match(p.name)["i"] for p in parts}) < k:  # type: ignore[index]
                incomplete.update(p.name for p in parts)
                continue
            info = compaction_info(loc, parts[0].path)
            if info.get("group") != group:
                continue  # not ours to interpret; an ordinary file
            replaced.update(str(n) for n in info.get("replaces", []))
        for f in members:
            if f.name in incomplete:
                states.incomplete.append(f)
            elif f.name in replaced:
                states.replaced.append(f)
            else:
                states.live.append(f)
    states.live.sort(key=lambda f: f.path)
    return states


def live_files(loc: fs.Location, files: Iterable[DataFile] | None = None) -> list[DataFile]:
    """The files a reader must read: each row exactly once (see the module docstring)."""
    return classify_files(loc, files).live


def dataset_schema() -> Any:
    """The event columns, then ``source`` (string) and ``event_date`` (date), as DuckDB and
    Polars infer them from the directory names."""
    import pyarrow as pa

    from pipeline.schema import EVENT_SCHEMA

    return pa.schema([*EVENT_SCHEMA, pa.field("source", pa.string()), pa.field("event_date", pa.date32())],
                     metadata=EVENT_SCHEMA.metadata)


def open_events(
    out: str | fs.Location, storage: StorageSettings | None = None, files: list[DataFile] | None = None,
) -> Any:
    """The events dataset under ``out`` as a ``pyarrow.dataset.Dataset``, each row once.

    For Polars: ``polars.scan_pyarrow_dataset(open_events(uri))``.
    """
    import pyarrow as pa
    import pyarrow.dataset as ds

    loc = events_location(out, storage) if isinstance(out, str) else out
    chosen = live_files(loc) if files is None else files
    partitioning = ds.partitioning(
        pa.schema([pa.field("source", pa.string()), pa.field("event_date", pa.date32())]), flavor="hive")
    return ds.dataset(
        [f.path for f in chosen], schema=dataset_schema(), format="parquet", filesystem=loc.fs,
        partitioning=partitioning, partition_base_dir=loc.base.rstrip("/"),
    )
