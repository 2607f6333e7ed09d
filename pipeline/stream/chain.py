"""Which buffered messages of a partition are ready to write: the unbroken prefix.

The writer may only make durable, and then commit, a prefix of the partition with no hole in
it, so that the committed offset always means "everything below is in the output". Each
:class:`~pipeline.stream.messages.KafkaMessage` names the offset the reader stood at before
it (``chain_from``); following that chain from the next uncommitted offset gives the prefix,
whatever gaps compaction or transaction markers left in the offsets.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pipeline.stream.messages import KafkaMessage


@dataclass(frozen=True)
class Split:
    ready: list[KafkaMessage]  # in offset order, starting at ``start``
    waiting: list[KafkaMessage]  # beyond a hole: kept for a later flush
    stale: int  # messages below ``start`` (already durable and committed): dropped
    start: int
    end: int  # the offset to commit once ``ready`` is durable (== start if nothing ready)


def ready_prefix(buffered: Iterable[KafkaMessage], start: int | None) -> Split:
    """Split ``buffered`` into the contiguous prefix from ``start`` and the rest.

    ``start`` is the next offset not yet durable; ``None`` when unknown (a first run with no
    committed offset), in which case the lowest ``chain_from`` buffered is taken.
    """
    by_offset: dict[int, KafkaMessage] = {}
    for m in buffered:
        by_offset.setdefault(m.offset, m)  # a re-read message is the same message
    msgs = sorted(by_offset.values(), key=lambda m: m.offset)
    if start is None:
        if not msgs:
            return Split([], [], 0, 0, 0)
        start = min(m.chain_from for m in msgs)
    stale = sum(1 for m in msgs if m.offset < start)
    live = [m for m in msgs if m.offset >= start]
    ready: list[KafkaMessage] = []
    cursor = start
    for m in live:
        # The reader went from chain_from straight to this offset with nothing in between, so
        # if the cursor lies in that stretch the message continues the prefix.
        if m.chain_from <= cursor <= m.offset:
            ready.append(m)
            cursor = m.offset + 1
        else:
            break
    return Split(ready, live[len(ready):], stale, start, cursor)
