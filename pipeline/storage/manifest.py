"""The input manifest: which input objects a run has already turned into durable output.

It lives beside the output, under ``<out>/_manifest/inputs/v1/`` (names starting with ``_``
are ignored by every Parquet reader). Each processed input is one small marker object whose
name is ``sha256(uri NUL version)``, where *version* is the S3 ETag (or size and mtime for a
local file), so:

* a re-run lists the markers once and skips every input whose marker exists: only new
  objects, or objects replaced since (new ETag), are read again;
* a marker is written **only after** the output of its input is durable (the caller's
  contract), and output file names are deterministic per input, so a crash between the two
  makes the next run redo that input and overwrite the same files: nothing lost, nothing
  duplicated;
* writers never contend: there is no shared file to append to, which object stores cannot do
  safely anyway.

Markers record digests, never object keys (CloudTrail keys contain account ids, and the output
bucket is the analysts' side). :meth:`Manifest.consolidate` folds many markers into one
snapshot object, crash-safely (snapshot first, then the markers it covers are deleted).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

import orjson

from pipeline.config import StorageSettings
from pipeline.errors import SinkError
from pipeline.storage import fs

MANIFEST_DIR = "_manifest/inputs/v1"
SNAPSHOT_PREFIX = "snapshot-"


class InputVersion(Protocol):
    @property
    def uri(self) -> str: ...

    @property
    def version(self) -> str: ...


InputT = TypeVar("InputT", bound=InputVersion)


@dataclass(frozen=True)
class LocalInput:
    """A local input file as the manifest sees it (``version`` = size and mtime)."""

    uri: str
    version: str

    @classmethod
    def of(cls, path: str) -> LocalInput:
        st = os.stat(path)
        return cls(os.path.abspath(path), f"{st.st_size}:{st.st_mtime_ns}")


def input_digest(uri: str, version: str) -> str:
    return hashlib.sha256(f"{uri}\0{version}".encode()).hexdigest()


class Manifest:
    """The processed-input markers of one output location."""

    def __init__(self, out_uri: str, storage: StorageSettings | None = None) -> None:
        self.loc = fs.resolve(out_uri, storage)
        self.dir = self.loc.join(MANIFEST_DIR)
        self._done: set[str] | None = None

    def _marker(self, digest: str) -> str:
        return f"{self.dir}/{digest}.json"

    def done(self, refresh: bool = False) -> set[str]:
        """Digests of every input recorded as processed (markers and snapshots)."""
        if self._done is not None and not refresh:
            return self._done
        found: set[str] = set()
        for path in fs.list_files(self.loc, self.dir, ".json"):
            name = path.rsplit("/", 1)[-1][: -len(".json")]
            if name.startswith(SNAPSHOT_PREFIX):
                found.update(self._read_snapshot(path))
            else:
                found.add(name)
        self._done = found
        return found

    def _read_snapshot(self, path: str) -> list[str]:
        try:
            doc = orjson.loads(fs.read_bytes(self.loc, path))
            digests = doc["inputs"]
            if not isinstance(digests, list):
                raise TypeError
            return [str(d) for d in digests]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise SinkError(
                "a manifest snapshot is damaged; delete _manifest/ to reprocess everything"
            ) from None

    def pending(self, inputs: Iterable[InputT]) -> list[InputT]:
        """The inputs not yet processed (new, or replaced since they were)."""
        done = self.done()
        return [i for i in inputs if input_digest(i.uri, i.version) not in done]

    def is_done(self, item: InputVersion) -> bool:
        return input_digest(item.uri, item.version) in self.done()

    def mark_done(self, item: InputVersion, *, records: int | None = None) -> None:
        """Record that ``item``'s output is durable. Call only after the output is written."""
        mark_done(self.loc, item.uri, item.version, records=records)
        if self._done is not None:
            self._done.add(input_digest(item.uri, item.version))

    def consolidate(self) -> int:
        """Fold every marker into one snapshot object; returns how many markers were folded."""
        markers = [p for p in fs.list_files(self.loc, self.dir, ".json")
                   if not p.rsplit("/", 1)[-1].startswith(SNAPSHOT_PREFIX)]
        if not markers:
            return 0
        digests = sorted(self.done(refresh=True))
        name = f"{SNAPSHOT_PREFIX}{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}.json"
        fs.write_bytes_atomic(self.loc, f"{self.dir}/{name}", orjson.dumps({"v": 1, "inputs": digests}))
        old_snapshots = [p for p in fs.list_files(self.loc, self.dir, ".json")
                         if p.rsplit("/", 1)[-1].startswith(SNAPSHOT_PREFIX)
                         and not p.endswith(name)]
        for path in [*markers, *old_snapshots]:
            fs.delete(self.loc, path)
        return len(markers)


def mark_done(loc: fs.Location | str, uri: str, version: str, *, records: int | None = None,
              storage: StorageSettings | None = None) -> None:
    """Write the marker for one input (atomic; idempotent). For Beam DoFns: picklable arguments."""
    loc = fs.resolve(loc, storage) if isinstance(loc, str) else loc
    doc: dict[str, object] = {"v": 1, "done_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    if records is not None:
        doc["records"] = records
    path = loc.join(MANIFEST_DIR, f"{input_digest(uri, version)}.json")
    fs.write_bytes_atomic(loc, path, orjson.dumps(doc))


def mark_all_done(out_uri: str, storage: StorageSettings | None, inputs: Iterable[InputVersion],
                  threads: int = 16) -> int:
    """Write the markers of many inputs whose output is durable (e.g. after a successful run).

    Markers are independent objects, so they are written in parallel; returns how many.
    """
    from concurrent.futures import ThreadPoolExecutor

    loc = fs.resolve(out_uri, storage)
    items = list(inputs)
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        list(pool.map(lambda i: mark_done(loc, i.uri, i.version), items))
    return len(items)


def pending_inputs(out_uri: str, storage: StorageSettings | None, inputs: Sequence[InputT]) -> list[InputT]:
    """Shortcut: the inputs not yet recorded in ``out_uri``'s manifest."""
    return Manifest(out_uri, storage).pending(inputs)
