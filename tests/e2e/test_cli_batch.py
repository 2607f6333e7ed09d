"""End to end: the auditveil CLI on the shared fixtures and on realistic KMS/Vault logs,
every output checked by the leak scanner."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.sample.generate import write_sample
from tests.e2e.cli import auditveil

pytestmark = [pytest.mark.e2e, pytest.mark.hsm]


def events_view(out: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet('{out}/source=*/event_date=*/*.parquet', "
                "hive_partitioning = true)")
    return con


def test_shared_fixtures_end_to_end(tmp_path: Path, fixtures_dir: Path, pipeline_env: dict[str, str]) -> None:
    out, lookup, summary = tmp_path / "out", tmp_path / "lookup", tmp_path / "summary.json"
    done = auditveil("run", "--input", str(fixtures_dir), "--out", str(out), "--lookup", str(lookup),
                     "--no-progress", "--summary-json", str(summary), env=pipeline_env)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    s = json.loads(summary.read_text())
    assert s["workers"] == 1  # by default: a few MB do not pay for a second worker's start-up
    assert s["events_in"]["cloudtrail"] == s["events_out"]["cloudtrail"] >= 40
    assert s["dead_letters"].get("json", 0) >= 1  # SerializerTestFileBadJsonFormat.json
    assert s["tokens_minted"] == s["lookup_entries"] > 0
    assert s["hsm_calls"] <= s["tokens_minted"]
    con = events_view(out)
    assert con.execute("SELECT count(*) FROM events").fetchone() == (s["events_out"]["cloudtrail"],)
    scan = auditveil("scan", "--out", str(out), "--originals", str(fixtures_dir), env=pipeline_env)
    assert scan.returncode == 0, scan.stdout
    assert ": clean" in scan.stdout


def test_realistic_kms_and_vault_logs(tmp_path: Path, pipeline_env: dict[str, str]) -> None:
    counts = write_sample(tmp_path / "in", events=400, seed=11)
    out, lookup = tmp_path / "out", tmp_path / "lookup"
    done = auditveil("run", "--input", str(tmp_path / "in"), "--out", str(out), "--lookup", str(lookup),
                     "--no-progress", "--workers", "2", env=pipeline_env)
    assert done.returncode == 0, done.stderr
    assert f"{counts['digests']} digest file(s)" in done.stdout
    con = events_view(out)
    n_ct = counts["cloudtrail_events"] + counts["bare_events"]
    assert con.execute("SELECT count(*) FROM events WHERE source = 'cloudtrail'").fetchone() == (n_ct,)
    assert con.execute("SELECT count(*) FROM events WHERE source = 'vault'").fetchone() == (counts["vault_entries"],)
    assert con.execute("SELECT count(DISTINCT event_id) FROM events").fetchone() == (n_ct + counts["vault_entries"],)
    # Analysts can group by kept context values and join on tokens.
    kinds = {r[0] for r in con.execute("SELECT DISTINCT encryption_context['resource_type'] FROM events").fetchall()}
    assert {"health_record", "invoice"} <= kinds
    top = con.execute("SELECT actor_arn, count(*) n FROM events WHERE operation = 'Decrypt' GROUP BY ALL "
                  "ORDER BY n DESC LIMIT 1").fetchone()
    assert top is not None and top[0].startswith("prn.k1.")
    # The malformed Vault line is a sealed dead letter: metadata only in clear.
    dead = pq.read_table(next((out / "_dead_letters").glob("*.parquet"))).to_pylist()
    assert [d["error_class"] for d in dead] == ["json"]
    assert b"display_name" not in dead[0]["ciphertext"]
    scan = auditveil("scan", "--out", str(out), "--originals", str(tmp_path / "in"), env=pipeline_env)
    assert scan.returncode == 0, scan.stdout
    # The lookup vault is separate and sealed: no clear value in it either.
    blob = b"".join(p.read_bytes() for p in lookup.rglob("*") if p.is_file())
    assert b"eu-user-" not in blob and b"example-clinic.eu" not in blob


def test_rerun_is_incremental_and_reprocess_overwrites(tmp_path: Path, pipeline_env: dict[str, str]) -> None:
    write_sample(tmp_path / "in", events=80, seed=2)
    args = ["run", "--input", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--lookup",
            str(tmp_path / "lookup"), "--no-progress", "--summary-json", str(tmp_path / "s.json")]
    assert auditveil(*args, env=pipeline_env).returncode == 0
    first = json.loads((tmp_path / "s.json").read_text())
    count = events_view(tmp_path / "out").execute("SELECT count(*) FROM events").fetchone()
    # Nothing new: nothing read.
    assert auditveil(*args, env=pipeline_env).returncode == 0
    second = json.loads((tmp_path / "s.json").read_text())
    assert second["files_planned"] == 0 and second["already_processed"] == first["files_planned"]
    # A new file is picked up alone (here: a copy of the Vault log, so its entries double).
    shutil.copy(tmp_path / "in" / "vault" / "audit.log", tmp_path / "in" / "vault" / "audit-2.log")
    assert auditveil(*args, env=pipeline_env).returncode == 0
    third = json.loads((tmp_path / "s.json").read_text())
    assert third["files_planned"] == 1
    con = events_view(tmp_path / "out")
    after_copy = con.execute("SELECT count(*) FROM events").fetchone()
    assert after_copy == (count[0] + third["events_out"]["vault"],)
    # --reprocess reads everything again and overwrites the same files: no duplicates.
    assert auditveil(*args, "--reprocess", env=pipeline_env).returncode == 0
    assert json.loads((tmp_path / "s.json").read_text())["files_planned"] == first["files_planned"] + 1
    assert events_view(tmp_path / "out").execute("SELECT count(*) FROM events").fetchone() == after_copy


def test_hsm_unavailable_fails_closed(tmp_path: Path, fixtures_dir: Path, pipeline_env: dict[str, str]) -> None:
    bad_pin = tmp_path / "pin"
    bad_pin.write_text("000000")
    bad_pin.chmod(0o600)
    env = {**pipeline_env, "AUDITVEIL_PKCS11_PIN_FILE": str(bad_pin)}
    done = auditveil("run", "--input", str(fixtures_dir), "--out", str(tmp_path / "out"), "--lookup",
                     str(tmp_path / "lookup"), "--no-progress", env=env)
    assert done.returncode == 3
    assert "HSM" in done.stderr and "Traceback" not in done.stderr and "000000" not in done.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.parquet"))


@pytest.mark.parametrize(("args", "message"), [
    (["run", "--out", "o", "--lookup", "l"], "give at least one --input"),
    (["run", "--input", "nope-111122223333", "--out", "o", "--lookup", "l"], "does not exist"),
    (["run", "--input", ".", "--out", "same", "--lookup", "same"], "separate locations"),
    (["run", "--input", ".", "--out", "o", "--lookup", "o/lookup"], "separate locations"),
    (["run", "--input", ".", "--out", "ftp://x", "--lookup", "l"], "only local paths and s3://"),
])
def test_user_mistakes_are_one_clear_line(tmp_path: Path, pipeline_env: dict[str, str], args: list[str],
                                          message: str) -> None:
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        done = auditveil(*args, env=pipeline_env)
    finally:
        os.chdir(cwd)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert "111122223333" not in done.stderr


def test_bad_config_file_is_a_clear_error(tmp_path: Path, pipeline_env: dict[str, str]) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[pkcs11]\npin = \"1234\"\n")
    done = auditveil("--config", str(cfg), "keys", "status", env=pipeline_env)
    assert done.returncode == 2 and "must not be written in the configuration file" in done.stderr
    cfg.write_text("[nonsense]\n")
    done = auditveil("--config", str(cfg), "keys", "status", env=pipeline_env)
    assert done.returncode == 2 and "unknown section" in done.stderr


def test_scanner_finds_a_planted_leak(tmp_path: Path, pipeline_env: dict[str, str]) -> None:
    part = tmp_path / "out" / "source=cloudtrail" / "event_date=2026-11-27"
    part.mkdir(parents=True)
    pq.write_table(pa.table({"actor_arn": ["prn.k1.aaaaaaaaaaaaaaaaaaaaaaaaaa", "jane.doe@example.org"]}),
                   part / "part-x.parquet")
    done = auditveil("scan", "--out", str(tmp_path / "out"), env=pipeline_env)
    assert done.returncode == 1
    assert "LEAK email" in done.stdout and "jane.doe" not in done.stdout


def test_every_command_has_help(pipeline_env: dict[str, str]) -> None:
    top = auditveil("--help", env=pipeline_env)
    assert top.returncode == 0
    for cmd in ("run", "keys", "scan", "demo", "reid", "lookup", "query", "compact", "serve"):
        assert cmd in top.stdout
        sub = auditveil(cmd, "--help", env=pipeline_env)
        assert sub.returncode == 0 and "usage: auditveil" in sub.stdout, cmd


def test_demo(tmp_path: Path, pipeline_env: dict[str, str]) -> None:
    env = {k: v for k, v in pipeline_env.items() if not k.startswith(("AUDITVEIL_", "SOFTHSM2"))}
    done = auditveil("demo", "--dir", str(tmp_path / "demo"), "--events", "200", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "leak scanner" in done.stdout and ": clean" in done.stdout
    assert "health_record" in done.stdout  # the analyst query ran
    assert orjson.loads(next((tmp_path / "demo" / "out" / "_runs").glob("*.json")).read_bytes())["events_in"]
    shutil.rmtree(tmp_path / "demo")
