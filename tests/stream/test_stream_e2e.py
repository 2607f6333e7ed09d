"""``auditveil run --streaming --until-end`` end to end: a real broker, Prism, SoftHSM2."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from pipeline.scan.scanner import original_values, scan_location
from pipeline.storage.fs import resolve
from tests.services.kafka import KafkaBroker
from tests.stream.events import SECRET_MARKERS, cloudtrail_event, expected_ids, messages
from tests.stream.support import all_output_bytes, dead_letter_rows, output_ids, run_stream, stream_command

pytestmark = [pytest.mark.kafka, pytest.mark.hsm, pytest.mark.e2e]

MALFORMED = [b"not json {", b'{"hello": "world"}', b"\x1f\x8b\x08garbage", b'{"Records": 5}']


def _interleave(n: int, partitions: int) -> list[tuple[int, bytes]]:
    """Events with malformed messages and upstream duplicates mixed in."""
    out: list[tuple[int, bytes]] = []
    for k, item in enumerate(messages(n, partitions, batch_every=40)):
        out.append(item)
        if k % 500 == 250:
            out.append((k % partitions, MALFORMED[(k // 500) % len(MALFORMED)]))
        if k % 700 == 100:  # CloudTrail delivers some events twice
            out.append(((k + 1) % partitions, orjson.dumps(cloudtrail_event(k + 1))))
    return out


def test_bounded_stream_writes_every_event_once(kafka_broker: KafkaBroker, cli_env: dict[str, str],
                                                tmp_path: Path) -> None:
    n, partitions = 3000, 3
    topic = kafka_broker.create_topic(partitions=partitions)
    produced = _interleave(n, partitions)
    malformed = sum(1 for _, v in produced if v in MALFORMED)
    kafka_broker.produce(topic, produced)
    originals = tmp_path / "originals.jsonl"
    originals.write_bytes(b"\n".join(v for _, v in produced if v not in MALFORMED) + b"\n")
    out, lookup = tmp_path / "out", tmp_path / "lookup"
    cmd = stream_command(kafka_broker.bootstrap, [topic], out, lookup, "--until-end", "--group", "e2e",
                         "--window", "5")

    first = run_stream(cmd, cli_env)
    assert first.returncode == 0, first.stderr[-4000:]

    ids = output_ids(out)
    assert set(ids) == expected_ids(n)
    assert max(ids.values()) == 1, "an event id was written twice"
    assert dead_letter_rows(out) == malformed
    assert f"dead_letters={malformed}" in first.stdout
    assert "duplicates=" in first.stdout and "duplicates=0" not in first.stdout
    # offsets committed exactly up to the end, for every partition
    assert kafka_broker.committed("e2e", topic) == kafka_broker.end_offsets(topic)
    # nothing identifying anywhere: shapes and original values, in events, dead letters, records
    report = scan_location(resolve(str(out)), original_values([str(originals)]))
    assert report.clean, report.findings
    blob = all_output_bytes(out)
    for marker in SECRET_MARKERS:
        assert marker.encode() not in blob
    for bad in MALFORMED:
        assert bad not in blob, "a dead letter holds raw bytes in clear"
    # the lookup vault got sealed entries and wrapped keys
    assert list((lookup / "entries").glob("*.parquet")) and list((lookup / "deks").glob("*.json"))

    # A second run of the same command finds nothing new and changes nothing.
    before = {p: p.read_bytes() for p in out.rglob("*.parquet")}
    second = run_stream(cmd, cli_env)
    assert second.returncode == 0, second.stderr[-4000:]
    assert {p: p.read_bytes() for p in out.rglob("*.parquet")} == before


def test_stream_refuses_unknown_topic(kafka_broker: KafkaBroker, cli_env: dict[str, str], tmp_path: Path) -> None:
    cmd = stream_command(kafka_broker.bootstrap, ["no-such-topic"], tmp_path / "o", tmp_path / "l", "--until-end")
    done = run_stream(cmd, cli_env, timeout=120)
    assert done.returncode == 2
    assert "topic does not exist" in done.stderr
    assert "no-such-topic" not in done.stderr
