"""Turn ``--input`` values (paths and s3:// prefixes) into read tasks."""

from __future__ import annotations

import argparse
import datetime as dt
from dataclasses import dataclass
from typing import Any

from pipeline.config import Settings
from pipeline.errors import ConfigError
from pipeline.sources.files import ReadTask, discover

# A gzip input holds about this many times its size in JSON (CloudTrail exports: 8-15x).
GZIP_EXPANSION = 8


@dataclass(frozen=True)
class Plan:
    tasks: tuple[ReadTask, ...]
    total_bytes: int
    digests_skipped: int
    # s3:// objects to record in the output's manifest once the run has succeeded, and how
    # many were skipped because an earlier run already processed them (same ETag).
    to_record: tuple[Any, ...] = ()
    already_processed: int = 0

    @property
    def json_bytes(self) -> int:
        """About how many bytes of JSON the run will decode (a ``.gz`` input counts at
        ``GZIP_EXPANSION`` times its size): what sizes the default number of workers."""
        return sum(t.size * (GZIP_EXPANSION if t.path.endswith(".gz") else 1) for t in self.tasks)


def _date(value: str | None, option: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{option} takes a date as YYYY-MM-DD") from None


def plan_inputs(args: argparse.Namespace, settings: Settings, workers: int = 1) -> Plan:
    """Read tasks for every input not yet processed into ``args.out`` (see storage.manifest).

    An input counts as processed when the output's manifest records it with the same version
    (S3 ETag; size and modification time of a local file). ``--reprocess`` ignores the manifest.
    Large local files are cut into ranges, as many as a multiple of ``workers``.
    """
    local = [i for i in args.input if not i.startswith("s3://")]
    remote = [i for i in args.input if i.startswith("s3://")]
    from pipeline.storage.manifest import LocalInput, pending_inputs

    reprocess = bool(getattr(args, "reprocess", False))
    found = discover(local, settings.pipeline.split_bytes, workers) if local else None
    tasks: list[ReadTask] = []
    total = digests = already = 0
    to_record: list[Any] = []
    if found is not None:
        digests = found.digests_skipped
        files = {t.path: LocalInput.of(t.path) for t in found.tasks}
        todo_files = list(files.values()) if reprocess else pending_inputs(args.out, settings.storage,
                                                                            list(files.values()))
        wanted = {f.uri for f in todo_files}
        tasks = [t for t in found.tasks if files[t.path].uri in wanted]
        total = sum(t.size for t in tasks)
        already = len(files) - len(todo_files)
        to_record.extend(todo_files)
    if remote:
        from pipeline.storage import s3_exports

        since, until = _date(args.since, "--since"), _date(args.until, "--until")
        for uri in remote:
            objs: Any = s3_exports.expand_s3_inputs(
                uri, settings.storage, since=since, until=until,
                accounts=tuple(args.account), regions=tuple(args.region),
            )
            digests += int(getattr(objs, "digests_skipped", 0))
            todo = list(objs) if reprocess else pending_inputs(args.out, settings.storage, objs)
            already += len(objs) - len(todo)
            for obj in todo:
                tasks.append(ReadTask(obj.uri, 0, -1, 1, obj.display, int(obj.size)))
                total += int(obj.size)
            to_record.extend(todo)
    return Plan(tuple(tasks), total, digests, tuple(to_record), already)
