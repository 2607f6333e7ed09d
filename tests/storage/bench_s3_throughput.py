"""Throughput of ``auditveil run`` from S3 to S3 against local files to local files.

Not a test (pytest does not collect it): run it by hand on a quiet machine.

    python -m tests.storage.bench_s3_throughput [--events 200000] [--objects 40]

It generates synthetic CloudTrail KMS events (the shared benchmark generator's shape:
few principals and addresses, many encryption-context values), packs them into gzipped
``{"Records": [...]}`` objects in the export layout, puts the same objects on local disk and
in a MinIO bucket started on loopback, then runs the pipeline both ways with the same
SoftHSM2 token and reports events/s and the ratio. Machines here are shared and noisy: compare
the ratio, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
KEY_ARN = f"arn:aws:kms:eu-central-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def events(n: int, seed: int = 7) -> list[dict[str, object]]:
    rnd = random.Random(seed)
    users = [f"user{i}@company.eu" for i in range(500)]
    start = dt.datetime(2026, 4, 29, 9, 0, 0)
    out: list[dict[str, object]] = []
    for i in range(n):
        u = rnd.randrange(len(users))
        out.append({
            "eventVersion": "1.08",
            "userIdentity": {"type": "IAMUser", "principalId": f"AIDA{u:016d}",
                             "arn": f"arn:aws:iam::{ACCOUNT}:user/{users[u]}", "accountId": ACCOUNT,
                             "accessKeyId": f"AKIA{u:016d}", "userName": users[u]},
            "eventTime": (start + dt.timedelta(milliseconds=10 * i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eventSource": "kms.amazonaws.com",
            "eventName": rnd.choice(["Decrypt", "Encrypt", "GenerateDataKey", "ReEncrypt"]),
            "awsRegion": "eu-central-1",
            "sourceIPAddress": f"203.0.{rnd.randrange(8)}.{rnd.randrange(256)}",
            "userAgent": "aws-sdk-java/2.20.0",
            "requestParameters": {"encryptionContext": {"customer_id": f"eu-user-{rnd.randrange(50000)}",
                                                        "resource_type": "health_record"},
                                  "keyId": KEY_ARN, "encryptionAlgorithm": "SYMMETRIC_DEFAULT"},
            "responseElements": None,
            "requestID": f"req-{i}", "eventID": f"00000000-0000-4000-8000-{i:012d}",
            "readOnly": True, "eventType": "AwsApiCall", "managementEvent": True,
            "recipientAccountId": ACCOUNT,
            "resources": [{"accountId": ACCOUNT, "type": "AWS::KMS::Key", "ARN": KEY_ARN}],
        })
    return out


def export_objects(n_events: int, n_objects: int) -> dict[str, bytes]:
    evs = events(n_events)
    per = max(1, len(evs) // n_objects)
    objs: dict[str, bytes] = {}
    for j in range(n_objects):
        chunk = evs[j * per:(j + 1) * per if j < n_objects - 1 else len(evs)]
        key = (f"AWSLogs/{ACCOUNT}/CloudTrail/eu-central-1/2026/04/29/"
               f"{ACCOUNT}_CloudTrail_eu-central-1_20260429T{j // 60:02d}{j % 60:02d}Z_bench{j:06d}.json.gz")
        objs[key] = gzip.compress(orjson.dumps({"Records": chunk}), compresslevel=6)
    return objs


def run(env: dict[str, str], workdir: Path, name: str, *args: str) -> dict[str, object]:
    summary = workdir / f"{name}.json"
    cli = [sys.executable, "-m", "pipeline.cli", "run"]
    helptext = subprocess.run([*cli, "--help"], env=env, capture_output=True, text=True, cwd=ROOT).stdout
    extra = ["--reprocess"] if "--reprocess" in helptext else []  # once the manifest is wired in
    started = time.monotonic()
    proc = subprocess.run([*cli, *args, "--no-progress", *extra, "--summary-json", str(summary)],
                          env=env, capture_output=True, text=True, cwd=ROOT)
    wall = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"{name}: auditveil run failed: {proc.stderr.strip().splitlines()[-1:]}")
    doc = dict(json.loads(summary.read_text()))
    doc["wall_seconds"] = round(wall, 2)
    return doc


def _eps(r: dict[str, object]) -> float:
    return float(str(r["events_per_second"]))


def _median(rs: list[dict[str, object]]) -> dict[str, object]:
    return sorted(rs, key=_eps)[len(rs) // 2]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--objects", type=int, default=40)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=1, help="alternate the two runs N times; report medians")
    a = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from pipeline.custody.keys import ensure_keys
    from pipeline.custody.softhsm import ensure_token
    from tests.services.s3 import start_server

    with tempfile.TemporaryDirectory(prefix="auditveil-bench-") as tmp:
        work = Path(tmp)
        token = ensure_token(work / "hsm", label="bench")
        ensure_keys(token.settings())
        objs = export_objects(a.events, a.objects)
        local_in = work / "in"
        for key, body in objs.items():
            (local_in / key).parent.mkdir(parents=True, exist_ok=True)
            (local_in / key).write_bytes(body)
        server = start_server(work)
        try:
            client = server.client()
            src, out, lookup = server.make_bucket("src"), server.make_bucket("out"), server.make_bucket("lk")
            for key, body in objs.items():
                client.put_object(Bucket=src, Key=key, Body=body)
            env = {k: v for k, v in os.environ.items() if not k.startswith(("AUDITVEIL_", "AWS_"))}
            env.update(token.environ())
            env.update(server.env())
            if a.workers:
                env["AUDITVEIL_PIPELINE_WORKERS"] = str(a.workers)
            runs: dict[str, list[dict[str, object]]] = {"local_to_local": [], "s3_to_s3": []}
            local_args = ("--input", str(local_in), "--out", str(work / "out"), "--lookup", str(work / "lookup"))
            s3_args = ("--input", f"s3://{src}/AWSLogs/", "--out", f"s3://{out}/events",
                       "--lookup", f"s3://{lookup}/vault")
            for i in range(a.repeat):  # alternate which goes first, so load changes hit both alike
                order = [("local_to_local", local_args), ("s3_to_s3", s3_args)]
                for name, args in order if i % 2 == 0 else order[::-1]:
                    runs[name].append(run(env, work, f"{name}{i}", *args))
            results = {name: _median(rs) for name, rs in runs.items()}
            ratios = [_eps(s) / _eps(loc) for loc, s in zip(runs["local_to_local"], runs["s3_to_s3"], strict=True)]
        finally:
            server.stop()
    compressed = sum(len(b) for b in objs.values())
    print(f"input: {a.events} events in {a.objects} objects, {compressed / 1e6:.1f} MB gzipped; "
          f"S3 server: {server.kind}")
    for name, r in results.items():
        ev = sum(int(v) for v in dict(r["events_in"]).values())  # type: ignore[call-overload]
        print(f"{name:15} {ev:>8} events  pipeline {r['seconds']:>7}s = {r['events_per_second']:>9} ev/s"
              f"   wall {r['wall_seconds']:>7}s = {ev / float(r['wall_seconds']):>9.0f} ev/s  "  # type: ignore[arg-type]
              f"files {r['files_written']}")
    print(f"ratio S3->S3 / local->local (pipeline events/s), per pair: {[round(r, 2) for r in ratios]}; "
          f"median {sorted(ratios)[len(ratios) // 2]:.2f}")


if __name__ == "__main__":
    main()
