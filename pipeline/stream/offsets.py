"""Commit consumer-group offsets, only ever for output that is already durable."""

from __future__ import annotations

import logging
import time
from typing import Any

from pipeline.config import KafkaSettings
from pipeline.stream.client import open_consumer, reason

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

    def committed(self, topic: str, partition: int, attempts: int = 20) -> int | None:
        from kafka import TopicPartition
        from kafka.errors import KafkaError

        for attempt in range(attempts):
            try:
                value = self._client().committed(TopicPartition(topic, partition))
                return None if value is None else int(value)
            except KafkaError as exc:
                log.warning("cannot read a committed offset (%s); retrying", reason(exc))
                time.sleep(min(3.0, 0.3 * (attempt + 1)))
        raise _unavailable()

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
        if self._consumer is not None:
            try:
                self._consumer.close(autocommit=False)
            except Exception:  # noqa: S110 - closing is best effort
                pass
            self._consumer = None


def _unavailable() -> Exception:
    from pipeline.errors import InputError

    return InputError("cannot read the consumer group's committed offsets from Kafka")
