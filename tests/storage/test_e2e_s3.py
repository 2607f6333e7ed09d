"""End to end on a real S3 server: a CloudTrail export tree in one bucket, ``auditveil run`` to
two others, the example queries unchanged, the leak scanner clean, a re-run with nothing new,
and destinations refused by the jurisdiction guard."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.services.s3 import S3Server
from tests.storage import export_tree

pytestmark = [pytest.mark.s3, pytest.mark.e2e, pytest.mark.hsm]
ROOT = Path(__file__).resolve().parents[2]
QUERIES = sorted((ROOT / "schemas" / "queries").glob("*.sql"))


def _cli(env: dict[str, str], *args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], env=env, capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


def _run(env: dict[str, str], tmp: Path, name: str, *args: str) -> dict[str, Any]:
    summary = tmp / f"{name}.json"
    proc = _cli(env, "run", *args, "--no-progress", "--summary-json", str(summary))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return dict(json.loads(summary.read_text()))


@pytest.fixture()
def env(s3: S3Server, cli_env: dict[str, str]) -> dict[str, str]:
    clean = {k: v for k, v in cli_env.items() if not k.startswith("AWS_")}
    return {**clean, **s3.env()}


def _upload_sample(client: Any, bucket: str, tmp: Path) -> tuple[int, int, Path]:
    """The demo's realistic KMS export tree into ``bucket``; returns (log objects, digests, vault log)."""
    from pipeline.sample.generate import write_sample

    root = tmp / "sample"
    write_sample(root, events=240, seed=5)
    logs = digests = 0
    for path in sorted((root / "AWSLogs").rglob("*.json.gz")):
        key = f"org/{path.relative_to(root).as_posix()}"
        client.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
        if "CloudTrail-Digest" in key:
            digests += 1
        else:
            logs += 1
    return logs, digests, root / "vault" / "audit.log"


def test_export_tree_to_eu_buckets_and_back_to_analysts(
    s3: S3Server, env: dict[str, str], fixtures_dir: Path, tmp_path: Path,
) -> None:
    src = s3.make_bucket("trail")
    out_bucket, lookup_bucket = s3.make_bucket("events"), s3.make_bucket("vault")
    client = s3.client()
    tree = export_tree.build(client, src, fixtures_dir)  # odd shapes, org trail, digests, Insight
    logs, digests, vault_log = _upload_sample(client, src, tmp_path)  # realistic KMS traffic
    out, lookup = f"s3://{out_bucket}/events", f"s3://{lookup_bucket}/lookup"
    args = ("--input", f"s3://{src}", "--input", str(vault_log), "--out", out, "--lookup", lookup)
    first = _run(env, tmp_path, "first", *args)
    objects = len(tree.events) + len(tree.insight) + len(tree.outside) + logs
    assert first["files_planned"] == objects + 1  # and the local Vault audit log
    assert first["digests_skipped"] == len(tree.digests) + digests
    assert first["events_in"]["cloudtrail"] > 0 and first["events_in"]["vault"] > 0
    assert first["rows_written"] == sum(first["events_out"].values()) > 0

    # Analysts: every example query runs unchanged against the real output, with answers.
    counted = _cli(env, "query", "--out", out, "--format", "json", "SELECT count(*) AS n FROM events")
    assert counted.returncode == 0, counted.stderr
    assert json.loads(counted.stdout)["n"] == first["rows_written"]
    answers: dict[str, list[dict[str, Any]]] = {}
    for query in QUERIES:
        proc = _cli(env, "query", "--out", out, "--file", str(query), "--format", "json")
        assert proc.returncode == 0, f"{query.name}: {proc.stderr}"
        answers[query.stem] = [json.loads(line) for line in proc.stdout.splitlines()]
    decrypts = answers["decrypts_by_resource_kind"]
    assert {r["source"] for r in decrypts} == {"cloudtrail", "vault"}
    assert all(r["principal"] is None or "." in r["principal"] for r in decrypts)
    assert answers["failed_decrypts_by_principal"], "the sample has AccessDenied / permission denied"
    assert "unusual_source_networks" in answers

    # The analysts' bucket holds no identifier.
    originals = [str(fixtures_dir / f) for f in export_tree.EVENT_FILES] + [str(tmp_path / "sample")]
    scan = _cli(env, "scan", "--out", out, *[a for o in originals for a in ("--originals", o)])
    assert scan.returncode == 0, scan.stdout + scan.stderr
    for account in (export_tree.ACCOUNT_A, export_tree.ACCOUNT_B):
        for obj in client.list_objects_v2(Bucket=out_bucket).get("Contents", []):
            assert account not in obj["Key"]

    # Re-running finds nothing new to process.
    second = _run(env, tmp_path, "second", *args)
    assert second["files_planned"] == 0
    assert second["already_processed"] == first["files_planned"]
    assert sum(second["events_in"].values()) == 0
    recount = _cli(env, "query", "--out", out, "--format", "json", "SELECT count(*) AS n FROM events")
    assert json.loads(recount.stdout)["n"] == first["rows_written"]


@pytest.mark.parametrize(("extra", "flags", "expected"), [
    ({"AUDITVEIL_STORAGE_S3_REGION": "us-east-1"}, (), "region 'us-east-1' is not on the EU/EEA allow-list"),
    ({"AUDITVEIL_STORAGE_S3_ENDPOINT": "https://s3.eu-central-1.amazonaws.com"}, ("--strict-sovereignty",),
     "operated by Amazon Web Services, a US-headquartered provider"),
])
def test_refused_destinations(env: dict[str, str], extra: dict[str, str], flags: tuple[str, ...],
                              expected: str, tmp_path: Path, fixtures_dir: Path) -> None:
    proc = _cli({**env, **extra}, "run", "--input", str(fixtures_dir / "SerializerTestFile.json"),
                "--out", "s3://eu-audit/events", "--lookup", str(tmp_path / "lookup"), *flags,
                "--no-progress")
    assert proc.returncode == 5, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("auditveil: error: refusing to write")
    assert expected in lines[0]
    assert not (tmp_path / "lookup").exists()


@pytest.mark.parametrize("case", ["missing bucket", "bad credentials"])
def test_output_storage_failures_are_one_clear_line(
    s3: S3Server, env: dict[str, str], case: str, fixtures_dir: Path,
) -> None:
    if case == "bad credentials" and s3.kind == "moto":
        pytest.skip("moto's server accepts any credentials")
    lookup = s3.make_bucket("vault")
    out = "s3://auditveil-absent-bucket/events" if case == "missing bucket" else f"s3://{s3.make_bucket('ev')}/e"
    extra = {"AUDITVEIL_STORAGE_S3_RETRY_SECONDS": "2"}
    if case == "bad credentials":
        extra["AWS_SECRET_ACCESS_KEY"] = "definitely-not-the-secret"
    proc = _cli({**env, **extra}, "run", "--input", str(fixtures_dir / "SerializerTestFile.json"),
                "--out", out, "--lookup", f"s3://{lookup}/lookup", "--no-progress")
    assert proc.returncode == 4, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("auditveil: error: "), proc.stderr
    expected = "bucket does not exist" if case == "missing bucket" else "rejected the credentials"
    assert expected in lines[0]
    assert "auditveil-absent-bucket" not in proc.stderr and "definitely-not" not in proc.stderr
