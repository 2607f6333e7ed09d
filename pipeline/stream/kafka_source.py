"""Read Kafka with a Python-native splittable DoFn over kafka-python.

Shape (all wiring in :class:`ReadFromKafka`)::

    Impulse / PeriodicImpulse ─► _DiscoverPartitions ─► _NewPartitionsOnly ─► _ReadPartition (SDF)
                                  (topic metadata)        (each partition once)   one restriction per
                                                                                  partition: offsets

* **Restriction.** ``OffsetRange(start, stop)`` over one partition's offsets. ``start`` is the
  consumer group's committed offset, else the earliest or latest offset (``kafka.start``);
  ``stop`` is the end offset seen at start in bounded mode (``--until-end``), else unbounded.
  Only checkpoint splits are accepted: a partition is never read by two restrictions at once,
  so the writer sees each partition in offset order.
* **Checkpointing.** After a bounded amount of work, or when the partition has nothing new,
  the DoFn defers the remainder (``tracker.defer_remainder``) and the runner resumes it later
  from the first unclaimed offset.
* **Watermark.** A manual estimator per restriction: the largest record timestamp seen; an
  idle partition (nothing to read) advances it with wall time, less ``IDLE_SLACK``, so that
  quiet partitions do not hold back the event-time flushes of busy ones.
* **New partitions.** In streaming mode topic metadata is re-read every
  ``discovery_seconds`` (a ticker SDF whose watermark follows wall time, so discovery never
  holds back the event-time flushes); partitions not seen before start a new restriction.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

import apache_beam as beam
from apache_beam.io.restriction_trackers import OffsetRange, OffsetRestrictionTracker
from apache_beam.io.watermark_estimators import ManualWatermarkEstimator
from apache_beam.metrics import Metrics
from apache_beam.transforms.core import RestrictionProvider
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec
from apache_beam.utils.timestamp import Duration, Timestamp

from pipeline.config import KafkaSettings
from pipeline.errors import InputError
from pipeline.stream.client import close_quietly, open_consumer, reason
from pipeline.stream.messages import UNBOUNDED, KafkaBatch, KafkaMessage, KafkaPartition, partition_key
from pipeline.stream.status import BOARD, count

log = logging.getLogger(__name__)

NAMESPACE = "auditveil.stream"
UNBOUNDED_STOP = sys.maxsize
IDLE_SLACK = Duration(seconds=2)
DISCOVERY_SECONDS = 30.0
MAX_RECORDS_PER_CALL = 2_000
MAX_SECONDS_PER_CALL = 1.0
POLL_MS = 200
IDLE_RESUME = Duration(seconds=0.2)


class _PartitionOffsetTracker(OffsetRestrictionTracker):  # type: ignore[misc]
    """An offset tracker that only takes checkpoint splits and knows when it is unbounded."""

    def try_split(self, fraction_of_remainder: float) -> Any:
        if fraction_of_remainder != 0:
            return None  # keep each partition in one restriction, in offset order
        return super().try_split(fraction_of_remainder)

    def is_bounded(self) -> bool:
        return bool(self.current_restriction().stop != UNBOUNDED_STOP)


class _ReadPartition(beam.DoFn, RestrictionProvider):  # type: ignore[misc]
    """The splittable DoFn (and its own restriction provider): reads one partition's offsets.

    The restriction provider half looks up where the consumer group left off; the DoFn half
    reads, claims each offset, and checkpoints by deferring the remainder.
    """

    def __init__(self, kafka: KafkaSettings, bootstrap: str, values: bool = True) -> None:
        self._kafka = kafka
        self._bootstrap = bootstrap
        self._values = values
        self._consumer: Any = None
        self._lookup: Any = None
        self._assigned: Any = None
        self._next_offset = -1
        self._read = Metrics.counter(NAMESPACE, "kafka_messages_read")
        self._bytes = Metrics.counter(NAMESPACE, "kafka_bytes_read")
        self._poll_errors = Metrics.counter(NAMESPACE, "kafka_poll_errors")

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.update(_consumer=None, _lookup=None, _assigned=None)
        return state

    def setup(self) -> None:
        self._consumer = open_consumer(self._kafka, self._bootstrap)

    def teardown(self) -> None:
        for name in ("_consumer", "_lookup"):
            client = getattr(self, name)
            if client is not None:
                try:
                    client.close(autocommit=False)
                except Exception:  # noqa: S110 - closing is best effort
                    pass
                setattr(self, name, None)

    def initial_restriction(self, element: KafkaPartition) -> OffsetRange:
        start = self._start_offset(element)
        stop = UNBOUNDED_STOP if element.stop == UNBOUNDED else max(element.stop, start)
        return OffsetRange(start, stop)

    def create_tracker(self, restriction: OffsetRange) -> _PartitionOffsetTracker:
        return _PartitionOffsetTracker(restriction)

    def split(self, element: KafkaPartition, restriction: OffsetRange) -> Iterator[OffsetRange]:
        yield restriction  # one restriction per partition

    def restriction_size(self, element: KafkaPartition, restriction: OffsetRange) -> int:
        if restriction.stop == UNBOUNDED_STOP:
            return 1 << 20
        return max(0, int(restriction.stop - restriction.start))

    def truncate(self, element: KafkaPartition, restriction: OffsetRange) -> OffsetRange | None:
        # On drain, an unbounded read stops where it is; offsets stay uncommitted, nothing lost.
        if restriction.stop == UNBOUNDED_STOP:
            return None
        return restriction

    def _start_offset(self, element: KafkaPartition) -> int:
        from kafka import TopicPartition
        from kafka.errors import KafkaError

        if self._lookup is None:
            self._lookup = open_consumer(self._kafka, self._bootstrap)
        tp = TopicPartition(element.topic, element.partition)
        for attempt in range(10):
            try:
                committed = self._lookup.committed(tp)
                if committed is not None:
                    return int(committed)
                if self._kafka.start == "latest":
                    start = int(self._lookup.end_offsets([tp])[tp])
                else:
                    start = int(self._lookup.beginning_offsets([tp])[tp])
                # Record the starting point for the group, so that the writer (and a restart)
                # know where this partition's output begins.
                from kafka import OffsetAndMetadata

                self._lookup.commit({tp: OffsetAndMetadata(start, "", -1)})
                return start
            except KafkaError as exc:
                log.warning("cannot read the start offset of a partition (%s); retrying", reason(exc))
                time.sleep(min(5.0, 0.5 * (attempt + 1)))
        raise InputError("cannot read the consumer group's offsets from Kafka")

    def process(
        self,
        element: KafkaPartition,
        tracker: Any = beam.DoFn.RestrictionParam(),
        watermark: Any = beam.DoFn.WatermarkEstimatorParam(ManualWatermarkEstimator.default_provider()),
    ) -> Iterator[Any]:
        from kafka import TopicPartition
        from kafka.errors import KafkaError

        if self._consumer is None:
            self.setup()
        restriction = tracker.current_restriction()
        position = int(restriction.start)
        tp = TopicPartition(element.topic, element.partition)
        if position >= restriction.stop:
            tracker.try_claim(restriction.stop)
            return
        self._position_at(tp, position)
        started = time.monotonic()
        emitted = 0
        lag_gauge = Metrics.gauge(NAMESPACE, f"kafka_lag.{element.topic}.{element.partition}")
        while True:
            try:
                batch = self._consumer.poll(timeout_ms=POLL_MS, max_records=MAX_RECORDS_PER_CALL)
            except KafkaError as exc:
                self._poll_errors.inc()
                log.warning("Kafka poll failed (%s); will retry", reason(exc))
                self._assigned = None
                tracker.defer_remainder(Duration(seconds=1))
                return
            records = batch.get(tp, [])
            if not records:
                self._report_lag(tp, position, lag_gauge)
                if restriction.stop != UNBOUNDED_STOP:
                    reached = self._consumer.position(tp)
                    if reached is not None and reached >= restriction.stop:
                        tracker.try_claim(restriction.stop)  # done: end offset seen at start reached
                        return
                high = self._consumer.highwater(tp)
                if high is None:
                    high = self._end_offset(tp)
                if high is not None and position >= high:
                    _advance_idle(watermark)  # truly caught up, not merely waiting for a fetch
                tracker.defer_remainder(IDLE_RESUME)
                return
            # One element per poll: the runner's per-element cost is paid per batch, not per
            # message. Stamped with the first record's time (never behind this restriction's
            # watermark: a record stamped earlier is carried at the watermark, not dropped).
            taken: list[KafkaMessage] = []
            late = size = 0
            first_us = -1
            # The watermark in micros, as observed record by record (read and set once per poll).
            known = watermark.current_watermark()
            start_us = mark_us = int(known.micros) if known is not None else -1
            finished = False
            for rec in records:
                if rec.offset < position:
                    continue  # a re-delivered record from before the restriction
                if not tracker.try_claim(rec.offset):
                    self._assigned = None  # the next restriction may start elsewhere
                    finished = True
                    break
                ts_us = max(0, int(rec.timestamp)) * 1000
                if ts_us < mark_us:
                    ts_us = mark_us
                    late += 1
                if first_us < 0:
                    first_us = ts_us
                value = rec.value if rec.value is not None else b""
                taken.append(KafkaMessage(element.topic, element.partition, int(rec.offset), position,
                                          int(rec.timestamp), bytes(value) if self._values else b""))
                position = int(rec.offset) + 1
                self._next_offset = position
                size += len(value)
                mark_us = max(mark_us, ts_us)
            if mark_us > start_us:
                watermark.set_watermark(Timestamp(micros=mark_us))
            self._bytes.inc(size)
            count("late_messages", late)
            if taken and first_us >= 0:
                emitted += len(taken)
                yield beam.window.TimestampedValue(
                    KafkaBatch(element.topic, element.partition, tuple(taken)), Timestamp(micros=first_us))
            if finished:
                return
            self._read.inc(len(records))
            if emitted >= MAX_RECORDS_PER_CALL or time.monotonic() - started >= MAX_SECONDS_PER_CALL:
                self._report_lag(tp, position, lag_gauge)
                tracker.defer_remainder()
                return

    def _end_offset(self, tp: Any) -> int | None:
        """The partition's end offset, asked of the broker. The consumer learns a highwater only
        from fetch responses, and forgets it on every (re)assignment (after a poll error, a
        broker restart): without this an idle, caught-up partition could hold the watermark, and
        with it every window's flush, until some later fetch happened to report one."""
        from kafka.errors import KafkaError

        try:
            return int(self._consumer.end_offsets([tp])[tp])
        except (KafkaError, KeyError, TypeError, ValueError):
            return None

    def _position_at(self, tp: Any, position: int) -> None:
        if self._assigned != tp:
            self._consumer.assign([tp])
            self._assigned = tp
            self._consumer.seek(tp, position)
        elif self._next_offset != position:
            self._consumer.seek(tp, position)
        self._next_offset = position

    def _report_lag(self, tp: Any, position: int, gauge: Any) -> None:
        high = self._consumer.highwater(tp)
        if high is not None:
            lag = max(0, int(high) - position)
            gauge.set(lag)
            BOARD.set_lag(partition_key(tp.topic, tp.partition), lag)


def _advance_idle(watermark: Any) -> None:
    idle = Timestamp.now() - IDLE_SLACK
    current = watermark.current_watermark()
    if current is None or idle > current:
        watermark.set_watermark(idle)


class _Ticker(beam.DoFn, RestrictionProvider):  # type: ignore[misc]
    """An unbounded tick every ``interval`` seconds whose watermark follows wall time closely.

    Beam's PeriodicImpulse holds its watermark at the last tick until the next one, which would
    hold back every window flush by up to the discovery interval. This ticker wakes every second
    to report the wall time as its watermark and emits a tick only when one is due. The
    restriction is the tick number (seconds since the epoch / interval), so positions only grow.
    """

    def __init__(self, interval: float) -> None:
        self._interval = max(1.0, float(interval))

    def initial_restriction(self, element: Any) -> OffsetRange:
        return OffsetRange(0, UNBOUNDED_STOP)

    def create_tracker(self, restriction: OffsetRange) -> _PartitionOffsetTracker:
        return _PartitionOffsetTracker(restriction)

    def split(self, element: Any, restriction: OffsetRange) -> Iterator[OffsetRange]:
        yield restriction

    def restriction_size(self, element: Any, restriction: OffsetRange) -> int:
        return 1

    def truncate(self, element: Any, restriction: OffsetRange) -> OffsetRange | None:
        return None

    def process(
        self,
        element: Any,
        tracker: Any = beam.DoFn.RestrictionParam(),
        watermark: Any = beam.DoFn.WatermarkEstimatorParam(ManualWatermarkEstimator.default_provider()),
    ) -> Iterator[Any]:
        now = Timestamp.now()
        due = int(time.time() // self._interval)
        if due >= tracker.current_restriction().start:
            if not tracker.try_claim(due):
                return
            yield beam.window.TimestampedValue(due, now)
        _advance(watermark, now)
        tracker.defer_remainder(Duration(seconds=1))


def _advance(watermark: Any, ts: Timestamp) -> None:
    current = watermark.current_watermark()
    if current is None or ts > current:
        watermark.set_watermark(ts)


class _DiscoverPartitions(beam.DoFn):  # type: ignore[misc]
    """Topic metadata → one KafkaPartition per partition (with end offsets in bounded mode)."""

    def __init__(self, kafka: KafkaSettings, bootstrap: str, topics: Sequence[str], until_end: bool) -> None:
        self._kafka = kafka
        self._bootstrap = bootstrap
        self._topics = tuple(topics)
        self._until_end = until_end
        self._consumer: Any = None

    def setup(self) -> None:
        self._consumer = open_consumer(self._kafka, self._bootstrap, group=False)

    def teardown(self) -> None:
        close_quietly(self._consumer)
        self._consumer = None

    def process(self, _tick: Any) -> Iterator[tuple[str, KafkaPartition]]:
        from kafka import TopicPartition
        from kafka.errors import KafkaError

        tps: list[Any] = []
        for attempt in range(20):
            try:
                tps = []
                self._consumer.topics()  # a fresh metadata read: partitions added since appear
                for topic in self._topics:
                    parts = self._consumer.partitions_for_topic(topic)
                    if not parts:
                        raise InputError("a topic to read does not exist or has no partitions")
                    tps.extend(TopicPartition(topic, p) for p in sorted(parts))
                break
            except KafkaError as exc:
                log.warning("cannot read topic metadata (%s); retrying", reason(exc))
                time.sleep(min(5.0, 0.5 * (attempt + 1)))
        else:
            raise InputError("cannot read topic metadata from Kafka")
        stops: dict[Any, int] = {}
        if self._until_end:
            stops = {tp: int(off) for tp, off in self._consumer.end_offsets(tps).items()}
        for tp in tps:
            yield "partitions", KafkaPartition(tp.topic, tp.partition, stops.get(tp, UNBOUNDED))


class _NewPartitionsOnly(beam.DoFn):  # type: ignore[misc]
    """Pass each partition on the first time discovery reports it, never again."""

    SEEN = ReadModifyWriteStateSpec("seen", beam.coders.PickleCoder())

    def process(self, item: tuple[str, KafkaPartition], seen: Any = beam.DoFn.StateParam(SEEN)) -> Iterator[
        KafkaPartition
    ]:
        _, part = item
        known: set[tuple[str, int]] = seen.read() or set()
        ident = (part.topic, part.partition)
        if ident in known:
            return
        known.add(ident)
        seen.write(known)
        if known and len(known) > 1:
            log.info("reading %d partitions", len(known))
        yield part


class ReadFromKafka(beam.PTransform):  # type: ignore[misc]
    """Read ``topics`` as a PCollection of :class:`KafkaBatch` (consecutive messages of one
    partition, as one poll returned them), timestamped by the first record's time.

    ``until_end=True`` is the bounded mode: every partition is read up to the end offset seen
    when the pipeline started, then the read finishes. Otherwise the read never finishes and
    picks up partitions added later.

    ``values=False`` hands on positions only (offsets, chains and times; every ``value`` is
    empty): for a consumer that reads the bytes from Kafka itself, as the exactly-once writer
    does. The raw messages then never enter the runner, and are not encoded, sent to it and
    back for nothing.
    """

    def __init__(self, kafka: KafkaSettings, bootstrap: str, topics: Sequence[str], until_end: bool = False,
                 discovery_seconds: float = DISCOVERY_SECONDS, values: bool = True) -> None:
        super().__init__()
        if not topics:
            raise InputError("name at least one Kafka topic to read (--topic NAME)")
        self._kafka = kafka
        self._bootstrap = bootstrap
        self._topics = tuple(topics)
        self._until_end = until_end
        self._discovery_seconds = discovery_seconds
        self._values = values

    def expand(self, pbegin: Any) -> Any:
        if self._until_end:
            ticks = pbegin | "Once" >> beam.Impulse()
        else:
            ticks = (pbegin | "Start" >> beam.Impulse()
                     | "EveryFewSeconds" >> beam.ParDo(_Ticker(self._discovery_seconds)))
        return (
            ticks
            | "Discover" >> beam.ParDo(_DiscoverPartitions(self._kafka, self._bootstrap, self._topics,
                                                          self._until_end))
            | "NewOnly" >> beam.ParDo(_NewPartitionsOnly())
            | "Read" >> beam.ParDo(_ReadPartition(self._kafka, self._bootstrap, self._values))
        )
