"""The elements that flow between the streaming stages (plain named tuples: cheap to encode).

A :class:`KafkaMessage` carries ``chain_from``: the offset the reader was positioned at just
before it read this message (the previous message's offset + 1, or where the restriction
started). Offsets in a partition may have gaps (compaction, transaction markers), so the
writer cannot tell "missing" from "never existed" by arithmetic; it follows the chain
instead, and only ever treats the unbroken prefix of a partition as ready to write and commit.
"""

from __future__ import annotations

from typing import NamedTuple

UNBOUNDED = -1


class KafkaPartition(NamedTuple):
    """One topic partition to read; ``stop`` is the end offset for bounded runs, else -1."""

    topic: str
    partition: int
    stop: int = UNBOUNDED


class KafkaMessage(NamedTuple):
    """One record as read from Kafka. The key and headers are not kept (they may identify)."""

    topic: str
    partition: int
    offset: int
    chain_from: int
    timestamp_ms: int
    value: bytes


def partition_key(topic: str, partition: int) -> str:
    """The key of a partition in keyed state and metric names, e.g. ``kms-audit/3``."""
    return f"{topic}/{partition}"


class KafkaBatch(NamedTuple):
    """Consecutive messages of one partition, read by one poll (one element for the runner)."""

    topic: str
    partition: int
    messages: tuple[KafkaMessage, ...]
