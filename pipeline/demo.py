"""``auditveil demo``: the whole product on one machine in under a minute.

Creates a private SoftHSM2 token (its own configuration, random PIN in an owner-only file)
and auditveil's keys inside it, writes invented but realistic KMS CloudTrail exports and Vault
audit logs, runs the real batch pipeline into local Parquet, runs the leak scanner against
the originals, and queries the result with DuckDB as an analyst would.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path
from typing import Any

from pipeline.config import Settings, with_overrides
from pipeline.errors import LeakFound

DEMO_HELP = """\
Run auditveil end to end on embedded sample data:

  1. a private SoftHSM2 token under DIR/softhsm (nothing machine-wide is touched) and the
     HMAC key and custodians' key pair generated inside it;
  2. sample logs under DIR/input: CloudTrail exports in the S3 layout (with digest files),
     EventBridge events one per line, a Vault audit log (with one malformed line);
  3. the batch pipeline -> DIR/out (pseudonymised Parquet) and DIR/lookup (sealed vault);
  4. the leak scanner over DIR/out against the original inputs;
  5. two analyst queries with DuckDB.

DIR defaults to $AUDITVEIL_DEMO_DIR or ~/.local/share/auditveil/demo; out/ and lookup/ are
recreated on every run. Your own configuration's HSM settings are not used by the demo.
"""

QUERIES = (
    ("Decrypt calls per kind of resource (encryption context kept by policy)",
     "SELECT encryption_context['resource_type'] AS resource_type, count(*) AS decrypts "
     "FROM events WHERE operation = 'Decrypt' GROUP BY ALL ORDER BY decrypts DESC"),
    ("Failed KMS calls per principal token",
     "SELECT actor_arn AS principal, count(*) AS failures FROM events "
     "WHERE source = 'cloudtrail' AND outcome = 'failure' GROUP BY ALL ORDER BY failures DESC LIMIT 5"),
)


def add_commands(sub: Any) -> None:
    p = sub.add_parser("demo", help="run the whole pipeline on sample data with a private SoftHSM2 token",
                       description=DEMO_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", metavar="DIR", help="demo folder (default ~/.local/share/auditveil/demo)")
    p.add_argument("--events", type=int, default=600, metavar="N", help="sample size (default 600)")
    p.add_argument("--workers", type=int, default=None, metavar="N", help="worker processes")
    p.set_defaults(func=demo)


def demo_home(arg: str | None) -> Path:
    if arg:
        return Path(arg).expanduser().resolve()
    if os.environ.get("AUDITVEIL_DEMO_DIR"):
        return Path(os.environ["AUDITVEIL_DEMO_DIR"]).expanduser().resolve()
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "auditveil" / "demo"


def _print_query(title: str, sql: str, out: Path) -> None:
    import duckdb

    con = duckdb.connect()
    glob = str(out / "source=*" / "event_date=*" / "*.parquet")
    con.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet('{glob}', hive_partitioning = true)")
    print(f"\n-- {title}\n{sql};")
    rel = con.sql(sql)
    rel.show()


def demo(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.custody.keys import ensure_keys
    from pipeline.custody.softhsm import ensure_token
    from pipeline.run.cli import run_job
    from pipeline.run.inputs import Plan
    from pipeline.sample.generate import write_sample
    from pipeline.scan.scanner import original_values, scan_location
    from pipeline.sources.files import discover
    from pipeline.storage.fs import resolve

    home = demo_home(args.dir)
    print(f"auditveil demo in {home}")
    token = ensure_token(home / "softhsm", label="auditveil-demo")
    hsm = token.settings()
    settings = with_overrides(settings, "pkcs11", module=hsm.module, token_label=hsm.token_label, pin=hsm.pin,
                              pin_file=None)
    keys = ensure_keys(settings.pkcs11)
    print(f"1. SoftHSM2 token ready; keys {'created: ' + ', '.join(keys.created) if keys.created else 'present'}")
    inputs = home / "input"
    shutil.rmtree(inputs, ignore_errors=True)
    counts = write_sample(inputs, events=args.events)
    print(f"2. sample written: {counts['cloudtrail_events']} CloudTrail export events, {counts['bare_events']} "
          f"EventBridge events, {counts['vault_entries']} Vault entries, {counts['digests']} digest files, "
          f"{counts['malformed']} malformed line")
    out, lookup = home / "out", home / "lookup"
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(lookup, ignore_errors=True)
    found = discover([str(inputs)], settings.pipeline.split_bytes)
    plan = Plan(found.tasks, found.total_bytes, found.digests_skipped)
    print("3. running the pipeline")
    summary = run_job(settings, plan, str(out), str(lookup), workers=args.workers, progress=True)
    print(summary.render())
    report = scan_location(resolve(str(out)), original_values([str(inputs)]))
    if not report.clean:
        raise LeakFound(f"the leak scanner found {sum(report.findings.values())} finding(s); see `auditveil scan`")
    print(f"\n4. leak scanner: {report.files} files, {report.strings:,} distinct strings checked: clean")
    print("\n5. what an analyst sees (DuckDB):")
    for title, sql in QUERIES:
        _print_query(title, sql, out)
    print(
        "\nNext:\n"
        f"  auditveil query --out {out} \"SELECT operation, count(*) FROM events GROUP BY ALL\"\n"
        f"  auditveil scan --out {out} --originals {inputs}\n"
        "  re-identify a token with two custodian approvals: see README.md, 'Re-identification'"
    )
    return 0
