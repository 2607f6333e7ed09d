"""Turn ``--input`` values (paths and s3:// prefixes) into read tasks."""

from __future__ import annotations

import argparse
import datetime as dt
from dataclasses import dataclass
from typing import Any

from pipeline.config import Settings
from pipeline.errors import ConfigError
from pipeline.sources.files import ReadTask, discover


@dataclass(frozen=True)
class Plan:
    tasks: tuple[ReadTask, ...]
    total_bytes: int
    digests_skipped: int


def _date(value: str | None, option: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{option} takes a date as YYYY-MM-DD") from None


def plan_inputs(args: argparse.Namespace, settings: Settings) -> Plan:
    local = [i for i in args.input if not i.startswith("s3://")]
    remote = [i for i in args.input if i.startswith("s3://")]
    found = discover(local, settings.pipeline.split_bytes) if local else None
    tasks: list[ReadTask] = list(found.tasks) if found else []
    total = found.total_bytes if found else 0
    digests = found.digests_skipped if found else 0
    if remote:
        from pipeline.storage import s3_exports

        since, until = _date(args.since, "--since"), _date(args.until, "--until")
        for uri in remote:
            objs: Any = s3_exports.expand_s3_inputs(
                uri, settings.storage, since=since, until=until,
                accounts=tuple(args.account), regions=tuple(args.region),
            )
            for obj in objs:
                tasks.append(ReadTask(obj.uri, 0, -1, 1, obj.display, int(obj.size)))
                total += int(obj.size)
            digests += int(getattr(objs, "digests_skipped", 0))
    return Plan(tuple(tasks), total, digests)
