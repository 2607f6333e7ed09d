"""``auditveil query`` and ``auditveil compact``: the analyst's commands."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pipeline.config import Settings
from pipeline.errors import ConfigError

QUERY_HELP = """\
Run SQL with DuckDB over the pseudonymised events under --out (a local path or an s3:// URI,
on the endpoint configured in [storage] / AUDITVEIL_STORAGE_S3_ENDPOINT / AWS_ENDPOINT_URL).

The events are one view named `events`: the columns of schemas/events.md plus the partition
columns `source` (cloudtrail, vault) and `event_date` (DATE). Filters on event_date and
source read only the matching partitions. Identifiers are tokens (prn.k1.…); join on them
freely, and ask the custodians (auditveil reid) when a case needs a real value.

The query cannot read or write files (DuckDB's file access is switched off): it sees the
events and nothing else. Rows are counted exactly once even while `auditveil compact` runs.

examples:
  auditveil query --out s3://eu-audit/events "SELECT operation, count(*) FROM events GROUP BY 1"
  auditveil query --out ./events --file schemas/queries/decrypts_by_resource_kind.sql
  auditveil query --out ./events --format csv "SELECT * FROM events LIMIT 100" > sample.csv
"""

COMPACT_HELP = """\
Merge the small Parquet files of one or more partitions (streaming windows leave one per
window) into files of about --target-mb each, and delete the small ones.

Safe while analysts read: each compacted file is uploaded whole, its footer names the files
it replaces, and readers through `auditveil query` see every row exactly once at every
moment; a crash at any point is finished by the next run. Tools that glob the files
directly may see a row twice for the milliseconds between the upload and the deletions.
Run one compaction per partition at a time, on days the pipeline no longer writes to.

examples:
  auditveil compact --out s3://eu-audit/events --partition source=cloudtrail/event_date=2026-04-29
  auditveil compact --out ./events --all --dry-run
"""


def add_commands(sub: Any) -> None:
    q = sub.add_parser("query", help="run SQL (DuckDB) over the pseudonymised events",
                       description=QUERY_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    q.add_argument("--out", metavar="URI", required=True, help="the events dataset (path or s3:// URI)")
    q.add_argument("sql", nargs="?", metavar="SQL", help="the query; the events view is named `events`")
    q.add_argument("--file", metavar="FILE",
                   help="read the query from FILE instead (e.g. schemas/queries/*.sql)")
    q.add_argument("--format", choices=("table", "csv", "json"), default="table",
                   help="output format (default: an aligned table; json is one object per line)")
    q.set_defaults(func=query_command)

    c = sub.add_parser("compact", help="merge small Parquet files of a partition, safely while readers read",
                       description=COMPACT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("--out", metavar="URI", required=True, help="the events dataset (path or s3:// URI)")
    c.add_argument("--partition", action="append", default=[], metavar="source=S/event_date=D",
                   help="a partition to compact (repeatable)")
    c.add_argument("--all", action="store_true", help="compact every partition")
    c.add_argument("--target-mb", type=int, default=256, metavar="MB",
                   help="approximate size of each compacted file (default 256)")
    c.add_argument("--dry-run", action="store_true", help="show what would be merged, change nothing")
    c.set_defaults(func=compact_command)


def query_command(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.analyst.query import render, run_query

    if args.file and args.sql:
        raise ConfigError("give the query either as an argument or with --file, not both")
    if args.file:
        try:
            with open(args.file, encoding="utf-8") as fh:
                sql = fh.read()
        except OSError:
            raise ConfigError("the query file cannot be read") from None
    elif args.sql:
        sql = args.sql
    else:
        raise ConfigError("give a query (SQL argument or --file)")
    result = run_query(args.out, sql, settings.storage)
    sys.stdout.write(render(result, args.format))
    return 0


def compact_command(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.analyst.compact import compact_partition, partitions
    from pipeline.analyst.dataset import Partition

    if args.target_mb < 1:
        raise ConfigError("--target-mb must be 1 or more")
    if args.all and args.partition:
        raise ConfigError("give --partition or --all, not both")
    if args.all:
        chosen = partitions(args.out, settings.storage)
    elif args.partition:
        chosen = [Partition.parse(p) for p in args.partition]
    else:
        raise ConfigError("give at least one --partition source=…/event_date=… (or --all)")
    for partition in chosen:
        result = compact_partition(args.out, partition, settings.storage,
                                   target_bytes=args.target_mb * 1024 * 1024, dry_run=args.dry_run)
        print(("would compact " if args.dry_run else "") + result.describe())
    return 0
