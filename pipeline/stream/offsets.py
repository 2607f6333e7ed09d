"""Commit consumer-group offsets, only ever for output that is already durable."""

from __future__ import annotations

import logging
import time
from typing import Any

from pipeline.config import KafkaSettings
from pipeline.stream.client import close_quietly, open_consumer, reason

log = logging.getLogger(__name__)


class OffsetCommitter:
    """A group member that never subscribes: it reads and commits offsets for given partitions."""

    def __init__(self, kafka: KafkaSettings, bootstrap: str) -> None:
        self._kafka = kafka
        self._bootstrap = bootstrap
        self._consumer: Any = None

    def _client(self) -> Any:
        if self._consumer is None:
            self._consumer = open_consumer(self._kafka, self._bootstrap)
        return self._consumer

    def committed(self, topic: str, partition: int) -> int | None:
        """The group's committed offset; None if there is none *or* Kafka cannot say right now."""
        from kafka import TopicPartition
        from kafka.errors import KafkaError

        try:
            value = self._client().committed(TopicPartition(topic, partition))
            return None if value is None else int(value)
        except KafkaError as exc:
            log.warning("cannot read a committed offset (%s); will retry", reason(exc))
            return None

    def commit(self, topic: str, partition: int, offset: int) -> bool:
        """Commit ``offset`` (the next offset to read); False if Kafka refused or is unreachable."""
        from kafka import OffsetAndMetadata, TopicPartition
        from kafka.errors import KafkaError

        try:
            self._client().commit({TopicPartition(topic, partition): OffsetAndMetadata(offset, "", -1)})
            return True
        except KafkaError as exc:
            log.warning("offset commit failed (%s); output is durable and the commit will be retried",
                        reason(exc))
            return False

    def close(self) -> None:
        close_quietly(self._consumer)
        self._consumer = None


class RangeFetcher:
    """Reads a partition's messages in ``[start, stop)`` directly, to fill a hole in the buffer.

    The writer's buffer is an optimisation: the log itself is the truth. When the buffered
    run does not start at the committed offset, or has a hole, the missing messages are read
    again here (a sequential read is contiguous by construction).
    """

    def __init__(self, kafka: KafkaSettings, bootstrap: str) -> None:
        self._kafka = kafka
        self._bootstrap = bootstrap
        self._consumer: Any = None

    def fetch(self, topic: str, partition: int, start: int, stop: int, timeout: float = 15.0) -> list[Any]:
        from kafka import TopicPartition
        from kafka.errors import KafkaError

        from pipeline.stream.messages import KafkaMessage

        if self._consumer is None:
            self._consumer = open_consumer(self._kafka, self._bootstrap, group=False)
        tp = TopicPartition(topic, partition)
        out: list[KafkaMessage] = []
        position = start
        deadline = time.monotonic() + timeout
        try:
            if partition not in (self._consumer.partitions_for_topic(topic) or set()):
                self._consumer.topics()  # a partition added since this client last looked
            self._consumer.assign([tp])
            self._consumer.seek(tp, start)
            while position < stop and time.monotonic() < deadline:
                batch = self._consumer.poll(timeout_ms=200, max_records=5_000).get(tp, [])
                for rec in batch:
                    if rec.offset < position:
                        continue
                    if rec.offset >= stop:
                        return out
                    out.append(KafkaMessage(topic, partition, int(rec.offset), position, int(rec.timestamp),
                                            bytes(rec.value or b"")))
                    position = int(rec.offset) + 1
                if not batch:
                    reached = self._consumer.position(tp)
                    if reached is not None and reached >= stop:
                        break
        except KafkaError as exc:
            log.warning("re-reading part of a partition failed (%s); will retry", reason(exc))
        return out

    def close(self) -> None:
        close_quietly(self._consumer)
        self._consumer = None
