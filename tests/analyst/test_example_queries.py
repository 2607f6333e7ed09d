"""The example analyst queries in schemas/queries/ run unchanged and answer their question."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.analyst.query import run_query
from pipeline.storage import fs
from tests.analyst.helpers import token, write_partition

QUERIES = Path(__file__).resolve().parents[2] / "schemas" / "queries"
DECRYPTS = ("Decrypt", "ReEncrypt", "transit.decrypt", "transit.rewrap")


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("queries") / "events"
    loc = fs.resolve(str(root))
    for day, seed in (("2026-04-28", 1), ("2026-04-29", 2), ("2026-04-30", 3)):
        write_partition(loc, "cloudtrail", day, 2, 300, seed=seed)
    return str(root)


def _sql(name: str) -> str:
    return (QUERIES / name).read_text(encoding="utf-8")


def test_every_example_query_runs(out: str) -> None:
    files = sorted(QUERIES.glob("*.sql"))
    assert len(files) >= 3
    for f in files:
        result = run_query(out, f.read_text(encoding="utf-8"))
        assert result.columns, f.name
        assert result.rows, f.name


def test_decrypts_by_resource_kind(out: str) -> None:
    r = run_query(out, _sql("decrypts_by_resource_kind.sql"))
    assert r.columns[:4] == ["source", "principal", "resource_kind", "decrypts"]
    expected = run_query(out, "SELECT count(*) FROM events WHERE outcome = 'success' "
                              "AND operation = 'Decrypt'")
    assert sum(row[3] for row in r.rows) == expected.rows[0][0]
    assert {row[2] for row in r.rows} == {"health_record", "invoice"}
    assert all(row[1].startswith("prn.k1.") for row in r.rows)


def test_failed_decrypts_by_principal(out: str) -> None:
    r = run_query(out, _sql("failed_decrypts_by_principal.sql"))
    failures = run_query(out, "SELECT count(*) FROM events WHERE outcome = 'failure' "
                              "AND operation = 'Decrypt'")
    assert sum(row[3] for row in r.rows) == failures.rows[0][0] > 0
    assert {row[2] for row in r.rows} == {"AccessDenied"}


def test_unusual_source_networks(out: str) -> None:
    r = run_query(out, _sql("unusual_source_networks.sql"))
    flagged = {row[1] for row in r.rows}
    usual = {token("ip", str(i)) for i in range(3)}
    rare = {token("ip", str(99 + u)) for u in range(5)}
    assert flagged and flagged <= rare and not flagged & usual
    assert all(row[4] <= 5 and row[5] == 1 for row in r.rows)  # rare, and used by one principal
