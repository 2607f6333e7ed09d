"""Beam TestPipeline tests of the batch transforms, with the real HSM and local storage."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import apache_beam as beam
import orjson
import pyarrow.dataset as ds
import pytest
from apache_beam.runners.portability.fn_api_runner import fn_runner
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from pipeline.config import Settings
from pipeline.custody.hsm import read_custodian_public_key
from pipeline.run.batch import collect_counters
from pipeline.run.stages import Pseudonymise, StageConfig
from pipeline.sample.generate import cloudtrail_event, vault_entries
from pipeline.sources.files import ReadTask, discover

pytestmark = pytest.mark.hsm


def write_inputs(root: Path, n: int) -> None:
    rnd = random.Random(5)
    when = dt.datetime(2026, 11, 27, tzinfo=dt.UTC)
    with open(root / "ct.jsonl", "wb") as fh:
        for i in range(n):
            fh.write(orjson.dumps(cloudtrail_event(rnd, when + dt.timedelta(hours=i), "111122223333", "eu-west-1")))
            fh.write(b"\n")
        fh.write(b"{broken\n")
    with open(root / "vault.log", "wb") as fh:
        for _ in range(n // 2):
            for e in vault_entries(rnd, when):
                fh.write(orjson.dumps(e) + b"\n")


def prepared(tmp_path: Path, settings: Settings, n: int, split_bytes: int = 16 * 1024 * 1024,
             ) -> tuple[list[ReadTask], StageConfig]:
    """Inputs with ``n`` CloudTrail events, n Vault entries and one bad line; tasks and config."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    write_inputs(inputs, n)
    tasks = list(discover([str(inputs)], split_bytes=split_bytes).tasks)
    config = StageConfig(settings, str(tmp_path / "out"), str(tmp_path / "lookup"), "auto",
                         read_custodian_public_key(settings.pkcs11))
    return tasks, config


def run_once(tasks: list[ReadTask], config: StageConfig) -> object:
    p = beam.Pipeline(runner=fn_runner.FnApiRunner())
    _ = p | beam.Create(tasks) | Pseudonymise(config)
    result = p.run()
    result.wait_until_finish()
    return result


def test_pseudonymise_writes_events_lookup_and_dead_letters(tmp_path: Path, settings: Settings) -> None:
    tasks, config = prepared(tmp_path, settings, 40, split_bytes=4096)
    assert len(tasks) > 2  # the JSON-lines files were split into ranges
    with test_pipeline.TestPipeline(runner=fn_runner.FnApiRunner()) as p:
        # One output element per chunk; every chunk with events wrote at least one file.
        wrote = p | beam.Create(tasks) | Pseudonymise(config) | beam.Map(lambda d: len(d["files"]) > 0)
        assert_that(wrote | beam.combiners.Count.Globally(), equal_to([len(tasks)]))
    events = ds.dataset(str(tmp_path / "out"), format="parquet", partitioning="hive").to_table()
    assert events.num_rows == 40 + 40  # 40 CloudTrail + 20 Vault requests + 20 responses
    assert set(events.column("source").to_pylist()) == {"cloudtrail", "vault"}
    assert len(set(events.column("event_id").to_pylist())) == 80
    dead = list((tmp_path / "out" / "_dead_letters").glob("*.parquet"))
    assert len(dead) == 1
    assert list((tmp_path / "lookup" / "entries").glob("*.parquet"))
    assert list((tmp_path / "lookup" / "deks").glob("*.json"))


def test_counters_reach_the_driver(tmp_path: Path, settings: Settings) -> None:
    tasks, config = prepared(tmp_path, settings, 10)
    c = collect_counters(run_once(tasks, config))
    assert c["events_in.cloudtrail"] == 10 and c["events_in.vault"] == 10
    assert c["events_out.cloudtrail"] + c["events_out.vault"] == c["rows_written"] == 20
    assert c["dead_letters.json"] == 1 and c["dead_letters_written"] == 1
    assert c["tokens_minted"] == c["lookup_entries"] == c["hsm_calls"] > 0


def test_rerun_overwrites_instead_of_duplicating(tmp_path: Path, settings: Settings) -> None:
    tasks, config = prepared(tmp_path, settings, 12)
    for _ in range(2):
        run_once(tasks, config)
    events = ds.dataset(str(tmp_path / "out"), format="parquet", partitioning="hive").to_table()
    assert events.num_rows == 24
