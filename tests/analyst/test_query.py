"""``auditveil query``: DuckDB over the events dataset, locally and on a real S3 server."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.analyst.query import render, run_query
from pipeline.errors import ConfigError
from pipeline.storage import fs
from tests.analyst.helpers import write_partition
from tests.services.s3 import S3Server

ROOT = Path(__file__).resolve().parents[2]


def _plain_env() -> dict[str, str]:
    """The environment without any auditveil or AWS setting (the query needs no HSM)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("AUDITVEIL_", "AWS_"))}


@pytest.fixture()
def local_out(tmp_path: Path) -> tuple[str, int]:
    loc = fs.resolve(str(tmp_path / "events"))
    n = write_partition(loc, "cloudtrail", "2026-04-28", 3, 40, seed=1)
    n += write_partition(loc, "cloudtrail", "2026-04-29", 2, 50, seed=2)
    n += write_partition(loc, "vault", "2026-04-29", 1, 30, seed=3)
    # What the pipeline writes beside the data must never be read as events.
    fs.write_bytes_atomic(loc, loc.join("_runs", "run-1.json"), b"{}")
    fs.write_parquet_atomic(loc, loc.join("_dead_letters", "part-x.parquet"), pa.table({"x": [1]}))
    fs.write_bytes_atomic(loc, loc.join("_manifest", "inputs", "v1", "a.json"), b"{}")
    return str(tmp_path / "events"), n


def test_counts_and_partition_columns(local_out: tuple[str, int]) -> None:
    out, n = local_out
    assert run_query(out, "SELECT count(*) FROM events").rows == [(n,)]
    r = run_query(out, "SELECT source, event_date, count(*) AS n FROM events GROUP BY ALL ORDER BY ALL")
    assert r.columns == ["source", "event_date", "n"]
    assert [(s, str(d), c) for s, d, c in r.rows] == [
        ("cloudtrail", "2026-04-28", 120), ("cloudtrail", "2026-04-29", 100), ("vault", "2026-04-29", 30)]
    # event_date is a DATE, as DuckDB and Polars infer it from the directory names.
    recent = run_query(out, "SELECT count(*) FROM events WHERE event_date >= DATE '2026-04-29'")
    assert recent.rows == [(130,)]
    assert run_query(out, "SELECT typeof(event_date) FROM events LIMIT 1").rows == [("DATE",)]
    ctx = run_query(out, "SELECT count(*) FROM events WHERE encryption_context['resource_type'] = 'invoice'")
    assert 0 < ctx.rows[0][0] < n


def test_same_table_for_duckdb_polars_pyarrow_without_options(tmp_path: Path) -> None:
    """A dataset root holding only partitions reads as one table in every tool, no options."""
    import duckdb
    import polars as pl

    root = tmp_path / "events"
    loc = fs.resolve(str(root))
    n = write_partition(loc, "cloudtrail", "2026-04-28", 2, 20, seed=1)
    n += write_partition(loc, "vault", "2026-04-29", 1, 10, seed=2)
    sql = f"SELECT count(*), count(DISTINCT source), min(event_date) FROM read_parquet('{root}/**/*.parquet')"
    assert duckdb.sql(sql).fetchall() == [(n, 2, dt.date(2026, 4, 28))]
    frame = pl.scan_parquet(root)
    assert frame.select(pl.len()).collect().item() == n
    assert frame.collect_schema()["event_date"] == pl.Date
    table = pq.read_table(root)
    assert table.num_rows == n and {"source", "event_date"} <= set(table.column_names)
    assert run_query(str(root), "SELECT count(*) FROM events").rows == [(n,)]


def test_pipeline_side_files_beside_the_data_are_ignored(local_out: tuple[str, int]) -> None:
    """_runs/, _dead_letters/ and _manifest/ sit in --out today: the query never reads them."""
    import duckdb

    out, n = local_out
    assert run_query(out, "SELECT count(*) FROM events").rows == [(n,)]
    glob = f"{out}/source=*/event_date=*/*.parquet"
    assert duckdb.sql(f"SELECT count(*) FROM read_parquet('{glob}')").fetchall() == [(n,)]


def test_partitions_under_an_events_folder(tmp_path: Path) -> None:
    """``<out>/events/source=…`` with the pipeline's folders beside it: the same table."""
    import polars as pl

    from pipeline.analyst import open_events
    from pipeline.analyst.compact import compact_partition
    from pipeline.analyst.dataset import Partition

    out = tmp_path / "out"
    loc = fs.resolve(str(out / "events"))
    n = write_partition(loc, "vault", "2026-04-29", 3, 10, seed=7)
    fs.write_bytes_atomic(loc, str(out / "_runs" / "r.json"), b"{}")
    assert run_query(str(out), "SELECT count(*) FROM events").rows == [(n,)]
    assert compact_partition(str(out), Partition("vault", "2026-04-29")).files_after == 1
    assert pl.scan_pyarrow_dataset(open_events(str(out))).select(pl.len()).collect().item() == n
    assert pl.scan_parquet(out / "events").select(pl.len()).collect().item() == n


def test_sql_is_sandboxed_and_errors_are_clear(local_out: tuple[str, int], tmp_path: Path) -> None:
    out, _ = local_out
    secret = tmp_path / "lookup.txt"
    secret.write_text("not for analysts")
    with pytest.raises(ConfigError) as err:
        run_query(out, f"SELECT * FROM read_csv('{secret}')")
    assert "disabled" in str(err.value).lower() or "permission" in str(err.value).lower()
    with pytest.raises(ConfigError):
        run_query(out, f"COPY (SELECT 1) TO '{tmp_path / 'x.csv'}'")
    assert not (tmp_path / "x.csv").exists()
    with pytest.raises(ConfigError, match="the query failed"):
        run_query(out, "SELEC nonsense")
    with pytest.raises(ConfigError):
        run_query(out, "   ")


def test_empty_dataset(tmp_path: Path) -> None:
    assert run_query(str(tmp_path / "nothing"), "SELECT count(*) FROM events").rows == [(0,)]


def test_render_formats(local_out: tuple[str, int]) -> None:
    out, _ = local_out
    r = run_query(out, "SELECT source, count(*) AS n FROM events GROUP BY 1 ORDER BY 1")
    assert render(r, "csv") == "source,n\ncloudtrail,220\nvault,30\n"
    assert render(r, "json").splitlines()[0] == '{"source":"cloudtrail","n":220}'
    table = render(r, "table")
    assert table.splitlines()[0].split() == ["source", "n"] and table.rstrip().endswith("(2 rows)")


@pytest.mark.s3
def test_query_on_s3_through_the_cli(s3: S3Server) -> None:
    bucket = s3.make_bucket("analysts")
    loc = fs.resolve(f"s3://{bucket}/events", s3.storage())
    n = write_partition(loc, "cloudtrail", "2026-04-29", 4, 25, seed=4)
    env = {**_plain_env(), **s3.env()}
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "query", "--out", f"s3://{bucket}/events", "--format", "csv",
         "SELECT count(*) AS n, min(event_date) AS d FROM events"],
        env=env, capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"n,d\n{n},2026-04-29\n"


@pytest.mark.s3
def test_cli_storage_failures_are_one_line(s3: S3Server) -> None:
    bucket = s3.make_bucket("analysts")
    cases = [
        ({"AUDITVEIL_STORAGE_S3_RETRY_SECONDS": "1"}, "s3://auditveil-missing-bucket/events",
         "bucket does not exist"),
    ]
    if s3.kind == "minio":
        cases.append(({"AWS_SECRET_ACCESS_KEY": "not-the-secret-key"}, f"s3://{bucket}/events",
                      "rejected the credentials"))
    for extra, uri, expected in cases:
        env = {**_plain_env(), **s3.env(), **extra}
        proc = subprocess.run(
            [sys.executable, "-m", "pipeline.cli", "query", "--out", uri, "SELECT count(*) FROM events"],
            env=env, capture_output=True, text=True, timeout=120, cwd=ROOT,
        )
        assert proc.returncode == 4, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("auditveil: error: ") and expected in lines[0]
        assert "Traceback" not in proc.stderr and "auditveil-missing-bucket" not in proc.stderr
        assert "not-the-secret-key" not in proc.stderr


def test_cli_query_file_and_usage_errors(local_out: tuple[str, int], tmp_path: Path) -> None:
    out, n = local_out
    sql = tmp_path / "q.sql"
    sql.write_text("-- count\nSELECT count(*) AS n FROM events;\n")
    env = _plain_env()
    ok = subprocess.run([sys.executable, "-m", "pipeline.cli", "query", "--out", out, "--file", str(sql),
                         "--format", "csv"], env=env, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert ok.returncode == 0 and ok.stdout == f"n\n{n}\n"
    bad = subprocess.run([sys.executable, "-m", "pipeline.cli", "query", "--out", out],
                         env=env, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert bad.returncode == 2 and "give a query" in bad.stderr
