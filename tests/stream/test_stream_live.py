"""A long-running stream: produce-to-Parquet delay, late events kept, new partitions picked up."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.services.kafka import KafkaBroker
from tests.stream.events import event_id, messages
from tests.stream.support import StreamProcess, output_ids, stream_command, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.hsm, pytest.mark.e2e]


def _visible(out: Path, ids: set[str]) -> bool:
    return ids <= set(output_ids(out))


def test_live_stream_delay_late_events_and_new_partitions(kafka_broker: KafkaBroker, cli_env: dict[str, str],
                                                          tmp_path: Path) -> None:
    group = "live"
    topic = kafka_broker.create_topic(partitions=1)
    produced = list(messages(400, 1))
    out, lookup = tmp_path / "out", tmp_path / "lookup"
    env = {**cli_env, "AUDITVEIL_KAFKA_DISCOVERY_SECONDS": "2"}
    cmd = stream_command(kafka_broker.bootstrap, [topic], out, lookup, "--group", group, "--window", "1",
                         "--status-seconds", "1")
    proc = StreamProcess(cmd, env, tmp_path / "run.log")
    try:
        # running: the source has recorded its starting position for the group
        wait_for(lambda: kafka_broker.committed(group, topic) == {0: 0}, 90, "the stream to start", proc=proc)
        time.sleep(2)

        # 1. on-time events: measure produce -> visible in Parquet
        sent = time.monotonic()
        kafka_broker.produce(topic, produced[:200])
        wait_for(lambda: _visible(out, {event_id(i) for i in range(200)}), 60, "on-time events", step=0.1,
                 proc=proc)
        delay = time.monotonic() - sent

        # 2. late events (record time two hours behind the watermark) are written, not dropped
        late_ts = int((time.time() - 7200) * 1000)
        kafka_broker.produce(topic, produced[200:300], timestamp_ms=late_ts)
        wait_for(lambda: _visible(out, {event_id(i) for i in range(200, 300)}), 60, "late events", proc=proc)

        # 3. a partition added while running is discovered and read
        kafka_broker.add_partitions(topic, 2)
        kafka_broker.produce(topic, [(1, v) for _, v in produced[300:]])
        wait_for(lambda: _visible(out, {event_id(i) for i in range(300, 400)}), 90, "the new partition",
                 proc=proc)
    finally:
        proc.stop()
    ids = output_ids(out)
    assert len(ids) == 400 and max(ids.values()) == 1
    assert kafka_broker.committed(group, topic) == kafka_broker.end_offsets(topic)
    status = [line for line in proc.output().splitlines() if "auditveil.status" in line]
    assert status and "late=0 " not in status[-1], "late events were not counted"
    print(f"produce -> visible Parquet: {delay:.2f}s for 200 events (window 1s)")
