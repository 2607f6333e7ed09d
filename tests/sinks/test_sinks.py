from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.config import Pkcs11Settings
from pipeline.custody.hsm import HsmSession, read_custodian_public_key
from pipeline.lookup.envelope import WrappedDek, open_sealed
from pipeline.schema import EVENT_SCHEMA, NULL_PARTITION
from pipeline.sinks import write_dead_letters, write_events
from pipeline.sources.records import Rejected
from pipeline.storage.fs import resolve


def events_table(dates: list[str]) -> pa.Table:
    n = len(dates)
    cols = {f.name: pa.nulls(n, f.type) for f in EVENT_SCHEMA}
    cols["event_id"] = pa.array([f"e{i}" for i in range(n)])
    cols["event_time"] = pa.array([dt.datetime(2026, 11, 27, tzinfo=dt.UTC)] * n, pa.timestamp("us", tz="UTC"))
    cols["source"] = pa.array(["cloudtrail"] * n)
    cols["event_date"] = pa.array(dates)
    return pa.table(cols)


def test_events_are_partitioned_named_by_stem_and_overwritten(tmp_path: Path) -> None:
    loc = resolve(str(tmp_path))
    table = events_table(["2026-11-27", "2026-11-28", "2026-11-27", NULL_PARTITION])
    files = write_events(loc, table, "stem1")
    assert sorted(Path(f.path).relative_to(tmp_path).as_posix() for f in files) == [
        "source=cloudtrail/event_date=2026-11-27/part-stem1.parquet",
        "source=cloudtrail/event_date=2026-11-28/part-stem1.parquet",
        f"source=cloudtrail/event_date={NULL_PARTITION}/part-stem1.parquet",
    ]
    again = write_events(loc, table, "stem1")
    assert sorted(f.path for f in again) == sorted(f.path for f in files)
    day = pq.read_table(tmp_path / "source=cloudtrail" / "event_date=2026-11-27" / "part-stem1.parquet")
    assert day.num_rows == 2 and day.schema.names == EVENT_SCHEMA.names
    assert not list(tmp_path.rglob(".tmp-*"))


@pytest.mark.hsm
def test_dead_letters_are_sealed_for_the_custodians(tmp_path: Path, hsm_settings: Pkcs11Settings) -> None:
    out, lookup = resolve(str(tmp_path / "out")), resolve(str(tmp_path / "lookup"))
    raw = b'{"userName": "alice@example.org", broken'
    n = write_dead_letters(out, lookup, read_custodian_public_key(hsm_settings), hsm_settings.oaep_hash,
                           [Rejected("json", "unknown", "input #1#line 2", raw)], "stem9")
    assert n == 1
    (row,) = pq.read_table(tmp_path / "out" / "_dead_letters" / "part-stem9.parquet").to_pylist()
    assert (row["error_class"], row["position"], row["raw_bytes"]) == ("json", "input #1#line 2", len(raw))
    assert b"alice" not in (tmp_path / "out" / "_dead_letters" / "part-stem9.parquet").read_bytes()
    wrapped = WrappedDek.from_json((tmp_path / "lookup" / "deks" / f"{row['dek_id']}.json").read_bytes())
    with HsmSession(hsm_settings.custodian_view()) as custodian:
        dek = custodian.unwrap_dek(wrapped.wrapped_dek, wrapped.oaep_hash)
    assert open_sealed(dek, row["nonce"], row["ciphertext"], row["dead_letter_id"]) == raw
