"""Which buffered messages are ready to write: the unbroken prefix from the committed offset."""

from __future__ import annotations

from pipeline.stream.chain import ready_prefix
from pipeline.stream.messages import KafkaMessage


def msg(offset: int, chain_from: int | None = None) -> KafkaMessage:
    return KafkaMessage("t", 0, offset, offset if chain_from is None else chain_from, 0, b"x")


def test_contiguous_run_is_ready() -> None:
    split = ready_prefix([msg(12), msg(10), msg(11)], 10)
    assert [m.offset for m in split.ready] == [10, 11, 12]
    assert split.waiting == [] and split.end == 13 and split.stale == 0


def test_offset_gaps_from_compaction_are_followed_by_the_chain() -> None:
    # The reader went 10 -> 15 -> 16 (11..14 compacted away): still one unbroken run.
    split = ready_prefix([msg(10), msg(15, chain_from=11), msg(16)], 10)
    assert [m.offset for m in split.ready] == [10, 15, 16]
    assert split.end == 17


def test_a_hole_stops_the_prefix_and_the_rest_waits() -> None:
    split = ready_prefix([msg(10), msg(11), msg(13), msg(14)], 10)
    assert [m.offset for m in split.ready] == [10, 11]
    assert [m.offset for m in split.waiting] == [13, 14]
    assert split.end == 12


def test_nothing_is_ready_when_the_start_is_missing() -> None:
    split = ready_prefix([msg(11), msg(12)], 10)
    assert split.ready == [] and split.end == 10
    assert [m.offset for m in split.waiting] == [11, 12]


def test_messages_below_the_committed_offset_are_stale() -> None:
    split = ready_prefix([msg(8), msg(9), msg(10)], 10)
    assert split.stale == 2
    assert [m.offset for m in split.ready] == [10]


def test_a_message_read_twice_counts_once() -> None:
    split = ready_prefix([msg(10), msg(10), msg(11), msg(11, chain_from=11)], 10)
    assert [m.offset for m in split.ready] == [10, 11]


def test_unknown_start_uses_the_lowest_chain_origin() -> None:
    split = ready_prefix([msg(6, chain_from=5), msg(7)], None)
    assert split.start == 5 and [m.offset for m in split.ready] == [6, 7]
    assert ready_prefix([], None).ready == []
