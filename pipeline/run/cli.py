"""``auditveil run``: the batch pipeline (and, with --streaming, the Kafka pipeline)."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from collections.abc import Sequence
from typing import Any

from pipeline.config import Settings, with_overrides
from pipeline.errors import ConfigError, HsmUnavailable
from pipeline.run.inputs import Plan
from pipeline.run.summary import RunSummary
from pipeline.sources.decode import FORMATS

RUN_HELP = """\
Read audit logs, replace every identifier with an HSM-keyed token, and write:

  --out     pseudonymised events as zstd Parquet, Hive-partitioned
            source=<cloudtrail|vault>/event_date=YYYY-MM-DD/ (for analysts), plus sealed
            dead letters under _dead_letters/ and a run summary under _runs/;
  --lookup  the sealed token -> value lookup vault (entries/ and deks/), readable only through
            a custodian-approved re-identification. Keep it in another bucket or folder, with
            other credentials, than --out.

Inputs (--input, repeatable): files or directories (recursive), gzipped or not: CloudTrail
{"Records": [...]} files in the S3 export layout AWSLogs/<account>/CloudTrail/<region>/...,
bare events one per line (EventBridge, CloudTrail Lake), Vault/OpenBao audit-device JSON
lines; s3:// prefixes of CloudTrail exports. CloudTrail digest files are recognised and
skipped. Bad input is dead-lettered (sealed) and counted; the run goes on.

The HSM is reached over PKCS#11 (AUDITVEIL_PKCS11_MODULE, _TOKEN_LABEL, _PIN or _PIN_FILE).
If it is unavailable nothing is written (fail closed).

Incremental: once a run succeeds, every input it read is recorded in <out>/_manifest/, and
the next run reads only new or changed inputs (S3 ETag; size and mtime of a local file);
--reprocess reads everything again. Output file names derive from the input position, so a
re-run after a crash overwrites instead of duplicating.

Streaming: --streaming --kafka-bootstrap HOST:PORT --topic NAME... keeps the same outputs
current from Kafka (CloudTrail events, EventBridge envelopes, {"Records": [...]} batches and
Vault lines, detected per message) on Beam's Prism runner, committing consumer offsets only
after the output is durable; --until-end stops at the end offsets seen at start.
See docs/streaming.md.
"""


def add_commands(sub: Any) -> None:
    p = sub.add_parser(
        "run", help="pseudonymise audit logs into Parquet (batch, or --streaming from Kafka)",
        description=RUN_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--input", metavar="PATH", action="append", default=[],
                   help="file, directory or s3:// prefix to read (repeatable)")
    p.add_argument("--out", metavar="URI", required=True, help="where pseudonymised events go (path or s3://)")
    p.add_argument("--lookup", metavar="URI", required=True, help="where the sealed lookup vault goes")
    p.add_argument("--format", choices=FORMATS, default="auto",
                   help="input format, detected per file or line by default")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="worker processes (default: pipeline.workers; 0 = automatic: one per core, "
                        "fewer for inputs too small to pay for a worker's ~1 s start-up)")
    p.add_argument("--since", metavar="YYYY-MM-DD", help="s3:// inputs: only export days on or after")
    p.add_argument("--until", metavar="YYYY-MM-DD", help="s3:// inputs: only export days on or before")
    p.add_argument("--account", action="append", default=[], metavar="ID",
                   help="s3:// inputs: only this account's exports (repeatable)")
    p.add_argument("--region", action="append", default=[], metavar="REGION",
                   help="s3:// inputs: only this region's exports (repeatable)")
    p.add_argument("--allow-non-eu", action="store_true", help="allow a destination outside the EU/EEA")
    p.add_argument("--strict-sovereignty", action="store_true",
                   help="refuse destinations run by US-headquartered providers, even in EU regions")
    p.add_argument("--reprocess", action="store_true",
                   help="read every input again, even those the output's manifest records as done")
    p.add_argument("--no-progress", action="store_true", help="do not show progress")
    p.add_argument("--summary-json", metavar="FILE", help="also write the run summary as JSON to FILE")
    p.add_argument("--runner", metavar="NAME", help="Beam runner (default: local, one process per core)")
    p.add_argument("--beam-option", action="append", default=[], metavar="KEY=VALUE",
                   help="extra Beam pipeline option, e.g. flink_master=host:8081 (repeatable)")
    from pipeline.stream.cli import add_run_options

    add_run_options(p)
    p.set_defaults(func=run_command)


def beam_args(args: argparse.Namespace) -> list[str]:
    out = [f"--runner={args.runner}"] if args.runner else []
    for opt in args.beam_option:
        if "=" not in opt:
            raise ConfigError("--beam-option takes KEY=VALUE")
        k, v = opt.split("=", 1)
        out.append(f"--{k.lstrip('-')}={v}")
    return out


def check_locations(out_uri: str, lookup_uri: str) -> None:
    """The lookup vault must not sit inside the analysts' dataset, nor the other way round."""
    def norm(u: str) -> str:
        return (u if u.startswith("s3://") else os.path.abspath(u)).rstrip("/") + "/"

    o, lk = norm(out_uri), norm(lookup_uri)
    if o == lk or lk.startswith(o) or o.startswith(lk):
        raise ConfigError("--out and --lookup must be separate locations (neither inside the other)")


def check_jurisdiction(settings: Settings, args: argparse.Namespace) -> None:
    from pipeline.storage.jurisdiction import check_destination

    allow = args.allow_non_eu or settings.storage.allow_non_eu
    strict = args.strict_sovereignty or settings.storage.strict_sovereignty
    for uri in (args.out, args.lookup):
        for warning in check_destination(uri, settings.storage, allow, strict):
            print(f"auditveil: warning: {warning}", file=sys.stderr)


def custodian_key(settings: Settings) -> bytes:
    """Fail-closed preflight: the HMAC key must be usable, and the custodians' public key is read."""
    from pipeline.custody.hsm import HsmSession, read_custodian_public_key

    with HsmSession(settings.pkcs11) as session:
        session.hmac_key(settings.pkcs11.key_version)
    der = read_custodian_public_key(settings.pkcs11)
    if not der:
        raise HsmUnavailable("the HSM returned no custodian public key")
    return der


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    if getattr(args, "streaming", False):
        from pipeline.stream.cli import run_streaming

        return int(run_streaming(args, settings))
    if not args.input:
        raise ConfigError("give at least one --input (or --streaming with Kafka options)")
    from pipeline.run.inputs import plan_inputs
    from pipeline.run.sizing import default_workers

    check_locations(args.out, args.lookup)
    check_jurisdiction(settings, args)
    configured = args.workers if args.workers is not None else settings.pipeline.workers
    summary = run_job(
        settings, plan_inputs(args, settings, default_workers(configured)), args.out, args.lookup, args.format,
        workers=configured, progress=not args.no_progress, beam_args=beam_args(args),
    )
    print(summary.render())
    if args.summary_json:
        with open(args.summary_json, "wb") as fh:
            fh.write(summary.to_json())
    return 0


def run_job(settings: Settings, plan: Plan, out_uri: str, lookup_uri: str, fmt: str = "auto", *,
            workers: int | None = None, progress: bool = True, beam_args: Sequence[str] = ()) -> RunSummary:
    """Run the batch pipeline over ``plan`` and write its summary beside the output."""
    from pipeline.run.sizing import runs_locally, workers_for
    from pipeline.run.worker import WarmWorkers
    from pipeline.sanitise.policy import load_policies
    from pipeline.storage.fs import check_writable, resolve, write_bytes_atomic

    load_policies(settings.pipeline.policy_dir)  # a bad policy fails before any work
    settings.pkcs11.user_pin()  # so does a missing PIN, before any folder is created
    out = resolve(out_uri, settings.storage)
    check_writable(out)  # a missing bucket or bad credentials: one clear line, before any work
    check_writable(resolve(lookup_uri, settings.storage))
    der = custodian_key(settings)  # fail closed before any work
    n = workers_for(plan, workers if workers is not None else settings.pipeline.workers)
    # Local worker processes start before this process imports Beam, so that both import at once
    # (see run/worker.py).
    with WarmWorkers(n) if n > 1 and runs_locally(beam_args) else contextlib.nullcontext() as warm:
        from pipeline.run.batch import run_batch
        from pipeline.run.progress import ProgressView
        from pipeline.run.stages import StageConfig

        with tempfile.TemporaryDirectory(prefix="auditveil-progress-") as progress_dir:
            # Workers never get the custodian PIN: they seal with the public key only.
            worker_settings = with_overrides(settings, "pkcs11", custodian_pin=None, custodian_pin_file=None)
            config = StageConfig(worker_settings, out_uri, lookup_uri, fmt, der, progress_dir)
            view = ProgressView(progress_dir, plan.total_bytes, enabled=progress)
            try:
                result = run_batch(plan.tasks, config, workers=n, beam_args=beam_args, on_tick=view.tick,
                                   warm=warm)
            finally:
                view.close()
    if plan.to_record:
        # Only now is every object's output durable: record them, so the next run skips them.
        # A crash before this line makes the next run redo them into the same file names.
        from pipeline.storage.manifest import mark_all_done

        mark_all_done(out_uri, settings.storage, plan.to_record)
    summary = RunSummary(result.counters, result.seconds, n, out_uri, lookup_uri, plan.digests_skipped,
                         len(plan.tasks), plan.already_processed)
    stamp = summary.as_dict()["finished_at"].replace(":", "").replace("-", "")
    write_bytes_atomic(out, out.join("_runs", f"run-{stamp}.json"), summary.to_json())
    return summary
