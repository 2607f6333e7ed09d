"""Find input files and cut them into read tasks.

``--input`` takes files and directories (recursively; hidden files skipped). CloudTrail digest
files (``CloudTrail-Digest/`` in the export layout) are recognised by path and skipped.
Large line-delimited files are cut into byte ranges that end on line boundaries, so that
several workers can read one big file; JSON documents and gzip files are read whole.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.config import StorageSettings
from pipeline.errors import InputError
from pipeline.sources.records import redact_position


@dataclass(frozen=True)
class ReadTask:
    """A unit of reading: a whole file, or the lines starting in [start, end) of one."""

    path: str
    start: int
    end: int  # -1: to the end of the file
    first_line: int
    display: str  # redacted, for positions and logs
    size: int

    @property
    def task_id(self) -> str:
        """Stable id: output file names derive from it, so a re-run overwrites, never duplicates."""
        h = hashlib.sha256(f"{os.path.abspath(self.path)}\0{self.start}\0{self.end}".encode())
        return h.hexdigest()[:20]


@dataclass(frozen=True)
class Discovery:
    tasks: tuple[ReadTask, ...]
    digests_skipped: int
    total_bytes: int


def is_digest_path(path: str) -> bool:
    p = path.replace(os.sep, "/")
    return "/CloudTrail-Digest/" in p or "_CloudTrail-Digest_" in p


def _walk(root: str) -> list[str]:
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found.extend(os.path.join(dirpath, f) for f in sorted(filenames) if not f.startswith("."))
    return found


def _looks_line_delimited(path: str) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(65536)
    if head[:2] == b"\x1f\x8b":
        return False
    first = head.lstrip().split(b"\n", 1)[0].strip()
    if not first.startswith(b"{") or not first.endswith(b"}"):
        return False
    return b'"Records"' not in first[:200]


def _split(path: str, size: int, ranges: int, display: str) -> list[ReadTask]:
    """Cut a line-delimited file into about ``ranges`` equal ranges; each range owns the lines
    that *start* in it (a cut moves forward to the next line start)."""
    tasks: list[ReadTask] = []
    with open(path, "rb") as fh:
        start, line_no = 0, 1
        for k in range(1, ranges + 1):
            end = size if k == ranges else max(start, size * k // ranges)
            if end < size:
                fh.seek(end)
                fh.readline()
                end = fh.tell()
            if end <= start:
                continue
            fh.seek(start)
            chunk_lines = fh.read(end - start).count(b"\n")
            tasks.append(ReadTask(path, start, end, line_no, display, end - start))
            line_no += chunk_lines
            start = end
    return tasks


def _ranges(size: int, split_bytes: int, parts: int) -> int:
    """How many ranges for a file of ``size`` bytes: each at most about ``split_bytes``, and a
    multiple of ``parts`` (the worker count) of them, so that the workers finish together."""
    ranges = -(-size // split_bytes)
    return -(-ranges // parts) * parts


def discover(inputs: Sequence[str], split_bytes: int = 16 * 1024 * 1024, parts: int = 1) -> Discovery:
    """Expand ``inputs`` into read tasks; raise :class:`InputError` for a path that is not there.

    A line-delimited file larger than ``split_bytes`` becomes several ranges, their number a
    multiple of ``parts``."""
    files: list[str] = []
    for n, item in enumerate(inputs, start=1):
        if os.path.isdir(item):
            files.extend(_walk(item))
        elif os.path.isfile(item):
            files.append(item)
        else:
            raise InputError(
                f"input #{n} ({redact_position(item)}) does not exist or is not a file or directory"
            )
    tasks: list[ReadTask] = []
    digests = 0
    total = 0
    for path in files:
        display = redact_position(os.path.relpath(path) if not os.path.isabs(path) else path)
        if is_digest_path(path):
            digests += 1
            continue
        try:
            size = os.path.getsize(path)
            line_delimited = size > split_bytes and _looks_line_delimited(path)
        except OSError:
            raise InputError(f"an input file cannot be read ({display})") from None
        total += size
        if line_delimited:
            tasks.extend(_split(path, size, _ranges(size, split_bytes, max(1, parts)), display))
        else:
            tasks.append(ReadTask(path, 0, -1, 1, display, size))
    return Discovery(tuple(tasks), digests, total)


def read_task(task: ReadTask, storage: StorageSettings | None = None) -> bytes:
    """The bytes of one task: a local file (range) or an S3 object."""
    if task.path.startswith("s3://"):
        from pipeline.storage.s3_exports import read_object

        return read_object(storage or StorageSettings(), task.path)
    with open(task.path, "rb") as fh:
        if task.start:
            fh.seek(task.start)
        return fh.read() if task.end < 0 else fh.read(task.end - task.start)
