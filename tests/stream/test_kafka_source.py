"""The splittable-DoFn Kafka source on Beam's Prism runner, against a real broker."""

from __future__ import annotations

import logging
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to

from pipeline.config import KafkaSettings
from pipeline.stream.kafka_source import ReadFromKafka
from tests.services.kafka import KafkaBroker
from tests.stream.support import PRISM

pytestmark = [pytest.mark.kafka]


@pytest.fixture(autouse=True, scope="module")
def _quiet_idle_readers() -> Any:
    """Prism's in-process workers keep their readers until the process exits; once the session's
    broker stops they would log reconnect errors. Nothing to see there."""
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    yield


def _options() -> PipelineOptions:
    return PipelineOptions(["--runner=PrismRunner", f"--prism_location={PRISM}", "--streaming",
                            "--prism_log_level=warn"])


def _flatten(batch: Any) -> list[tuple[int, int, int, bytes]]:
    """(partition, offset, chain_from, value) of every message in a batch."""
    return [(m.partition, m.offset, m.chain_from, m.value) for m in batch.messages]


def test_reads_every_partition_to_the_end_offsets_seen_at_start(kafka_broker: KafkaBroker) -> None:
    topic = kafka_broker.create_topic(partitions=3)
    kafka_broker.produce(topic, [(i % 3, b"m%d" % i) for i in range(900)])
    expected = [(i % 3, i // 3, i // 3, b"m%d" % i) for i in range(900)]
    with beam.Pipeline(options=_options()) as p:
        batches = p | ReadFromKafka(KafkaSettings(group_id="src-all"), kafka_broker.bootstrap, [topic],
                                    until_end=True)
        assert_that(batches | beam.FlatMap(_flatten), equal_to(expected))


def test_starts_at_the_groups_committed_offsets(kafka_broker: KafkaBroker) -> None:
    from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition

    topic = kafka_broker.create_topic(partitions=2)
    kafka_broker.produce(topic, [(i % 2, b"v%d" % i) for i in range(200)])
    committer = KafkaConsumer(bootstrap_servers=kafka_broker.bootstrap, group_id="src-resume",
                              enable_auto_commit=False)
    committer.commit({TopicPartition(topic, 0): OffsetAndMetadata(60, "", -1),
                      TopicPartition(topic, 1): OffsetAndMetadata(99, "", -1)})
    committer.close(autocommit=False)
    expected = [(0, o, 60 if o == 60 else o, b"v%d" % (2 * o)) for o in range(60, 100)]
    expected += [(1, 99, 99, b"v199")]
    with beam.Pipeline(options=_options()) as p:
        batches = p | ReadFromKafka(KafkaSettings(group_id="src-resume"), kafka_broker.bootstrap, [topic],
                                    until_end=True)
        assert_that(batches | beam.FlatMap(_flatten), equal_to(expected))


def test_latest_start_skips_history_and_records_the_position(kafka_broker: KafkaBroker) -> None:
    topic = kafka_broker.create_topic(partitions=1)
    kafka_broker.produce(topic, [b"old"] * 50)
    with beam.Pipeline(options=_options()) as p:
        batches = p | ReadFromKafka(KafkaSettings(group_id="src-latest", start="latest"),
                                    kafka_broker.bootstrap, [topic], until_end=True)
        assert_that(batches | beam.FlatMap(_flatten), equal_to([]))
    # the starting point was committed for the group, so the writer and a restart agree on it
    assert kafka_broker.committed("src-latest", topic) == {0: 50}


def test_positions_only_carry_no_message_bytes(kafka_broker: KafkaBroker) -> None:
    topic = kafka_broker.create_topic(partitions=2)
    kafka_broker.produce(topic, [(i % 2, b"secret-%d" % i) for i in range(100)])
    expected = [(i % 2, i // 2, i // 2, b"") for i in range(100)]
    with beam.Pipeline(options=_options()) as p:
        batches = p | ReadFromKafka(KafkaSettings(group_id="src-positions"), kafka_broker.bootstrap, [topic],
                                    until_end=True, values=False)
        assert_that(batches | beam.FlatMap(_flatten), equal_to(expected))
