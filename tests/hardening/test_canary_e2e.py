"""The canary harness: ``auditveil run`` end to end with canaries planted in every field of every
supported input shape, then every byte the run produced is searched. Zero hits is the only pass.

Searched: the events Parquet (decoded cell by cell, map keys and values, lists, the ``extra``
JSON, and the raw bytes), the dead letters, the lookup vault (entries and wrapped DEKs), the run
summaries (``_runs/`` and ``--summary-json``), the CLI's stdout and stderr (with ``--verbose``,
two worker processes), every file name, and the names of every Beam metric the run reported.
Besides the canaries, nothing shaped like an identifier may appear at all.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from pipeline.config import Settings, with_overrides
from tests.hardening.canaries import Canaries, Hit, Scenario, parquet_rows, search_text, search_tree, write_inputs

pytestmark = [pytest.mark.e2e, pytest.mark.hsm]

BOMB_LIMIT = 1 << 20  # max_decompressed_bytes for these runs, so bomb.json.gz is a bomb


def _auditveil(env: dict[str, str], *args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture(scope="module")
def canary_run(tmp_path_factory: pytest.TempPathFactory, operator_env: dict[str, str]) -> dict[str, object]:
    """One run over every input shape, two workers, verbose; its outputs for the tests below."""
    root = tmp_path_factory.mktemp("canary")
    c = Canaries()
    sc = write_inputs(root / "in", c)
    env = dict(operator_env)  # the pipeline token's PIN only, as an operator runs it
    env["AUDITVEIL_PIPELINE_MAX_DECOMPRESSED_BYTES"] = str(BOMB_LIMIT)
    env["AUDITVEIL_PIPELINE_BATCH_SIZE"] = "7"  # many batches, many files, many DEKs
    out, lookup, summary = root / "out", root / "lookup", root / "summary.json"
    args = ("--verbose", "run", "--input", str(sc.root), "--out", str(out), "--lookup", str(lookup),
            "--workers", "2", "--summary-json", str(summary))
    done = _auditveil(env, *args)
    if done.returncode == 3:  # SoftHSM2's login race between worker processes (test_hsm_concurrency.py)
        done = _auditveil(env, *args)
    scan = _auditveil(env, "scan", "--out", str(out), "--originals", str(sc.root))
    return {"canaries": c, "scenario": sc, "done": done, "out": out, "lookup": lookup, "summary": summary,
            "scan": scan, "root": root}


def _fmt(hits: list[Hit]) -> str:
    return "\n".join(f"{h.where}: {h.what}" for h in hits[:40])


def test_the_search_finds_planted_canaries(canary_run: dict[str, object], tmp_path: Path) -> None:
    """Positive control: the same search over the inputs, and over a Parquet map key, finds them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    c = canary_run["canaries"]
    sc = canary_run["scenario"]
    assert isinstance(c, Canaries) and isinstance(sc, Scenario)
    assert len(search_tree(c, sc.root / "vault")) > 100
    assert any(h.what == "canary in a file name" for h in search_tree(c, sc.root))
    marker = sorted(c.markers)[0]
    table = pa.table({"m": pa.array([[(marker, "v")]], pa.map_(pa.string(), pa.string()))})
    pq.write_table(table, tmp_path / "x.parquet", compression="zstd")
    assert any(h.where.endswith("column m") for h in search_tree(c, tmp_path))


def test_the_run_succeeds_and_accounts_for_every_input(canary_run: dict[str, object]) -> None:
    done = canary_run["done"]
    sc = canary_run["scenario"]
    assert isinstance(done, subprocess.CompletedProcess) and isinstance(sc, Scenario)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = orjson.loads(Path(str(canary_run["summary"])).read_bytes())
    assert sum(summary["events_out"].values()) == sum(summary["events_in"].values()) == sc.events
    assert sum(summary["dead_letters"].values()) == sc.dead_letters, summary["dead_letters"]
    assert {"json", "gzip", "shape", "unknown_format", "too_large", "too_deep"} <= set(summary["dead_letters"])
    assert summary["digests_skipped"] >= sc.digests
    assert summary["tokens_minted"] > 0 and summary["kept_values_tokenised"] > 0
    assert parquet_rows(Path(str(canary_run["out"]))) == sc.events
    assert canary_run["canaries"].planted > 1000  # type: ignore[attr-defined]


def test_no_canary_in_any_output_file(canary_run: dict[str, object]) -> None:
    c = canary_run["canaries"]
    assert isinstance(c, Canaries)
    hits = search_tree(c, Path(str(canary_run["out"]))) + search_tree(c, Path(str(canary_run["lookup"])))
    assert hits == [], _fmt(hits)


def test_no_canary_in_the_summary_stdout_or_stderr(canary_run: dict[str, object]) -> None:
    c = canary_run["canaries"]
    done = canary_run["done"]
    assert isinstance(c, Canaries) and isinstance(done, subprocess.CompletedProcess)
    hits = search_text(c, "summary.json", Path(str(canary_run["summary"])).read_text())
    hits += search_text(c, "stdout", done.stdout) + search_text(c, "stderr", done.stderr)
    assert hits == [], _fmt(hits)


def test_the_leak_scanner_agrees(canary_run: dict[str, object]) -> None:
    scan = canary_run["scan"]
    c = canary_run["canaries"]
    assert isinstance(scan, subprocess.CompletedProcess) and isinstance(c, Canaries)
    assert scan.returncode == 0, scan.stdout[-2000:]
    assert "clean" in scan.stdout
    assert search_text(c, "scan output", scan.stdout + scan.stderr) == []


def test_no_canary_in_metric_names(canary_run: dict[str, object], settings: Settings, tmp_path: Path) -> None:
    """The same inputs in-process, to see every Beam counter name the workers reported."""
    from pipeline.run.cli import run_job
    from pipeline.run.inputs import Plan
    from pipeline.sources.files import discover

    c = canary_run["canaries"]
    sc = canary_run["scenario"]
    assert isinstance(c, Canaries) and isinstance(sc, Scenario)
    found = discover([str(sc.root)])
    s = with_overrides(settings, "pipeline", max_decompressed_bytes=BOMB_LIMIT)
    summary = run_job(s, Plan(found.tasks, found.total_bytes, found.digests_skipped), str(tmp_path / "out"),
                      str(tmp_path / "lookup"), workers=1, progress=False)
    names = sorted(summary.counters)
    assert "events_in.cloudtrail" in names and "dead_letters.too_deep" in names
    hits = search_text(c, "metric names", "\n".join(names))
    assert hits == [], _fmt(hits)
    hits = search_tree(c, tmp_path)
    assert hits == [], _fmt(hits)


# -- regression: generalised values used to bypass the safety net (fixed in the sanitiser) -------

def test_identifier_shapes_in_generalised_fields_do_not_leak(tmp_path: Path, cli_env: dict[str, str]) -> None:
    c = Canaries()
    lines = [
        {"type": "request", "time": "2026-11-27T10:00:00Z", "request": {
            "id": "r1", "mount_type": "transit", "operation": "update",
            "path": f"transit/encrypt/{c.ident('email')}"}},
        {"type": "request", "time": "2026-11-27T10:00:00Z", "request": {
            "id": "r2", "mount_type": "kmip", "operation": "update",
            "path": f"kmip/scope/{c.ident('email')}/role/{c.ident('account')}"}},
        {"eventVersion": "1.08", "eventTime": "2026-11-27T10:00:00Z", "eventName": "Decrypt",
         "userAgent": f"{c.ident('akid')}/1.0 (x)", "requestParameters": {"keyId": f"alias/{c.ident('account')}"}},
    ]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "x.jsonl").write_bytes(b"\n".join(orjson.dumps(e) for e in lines))
    done = _auditveil(cli_env, "run", "--input", str(tmp_path / "in"), "--out", str(tmp_path / "out"),
                      "--lookup", str(tmp_path / "lookup"), "--workers", "1", "--no-progress")
    assert done.returncode == 0, done.stderr[-2000:]
    assert search_tree(c, tmp_path / "out") == []
