"""Exactly-once output per partition: buffer, cut the unbroken prefix, write, then commit.

One keyed, stateful DoFn per topic partition (key ``topic/partition``). The positions of
the messages it is handed wait in state (never their bytes: a runner may checkpoint state to
storage, and the bytes hold raw identifiers) until the event-time window they fall in closes
(the watermark passes its end), or until ``pipeline.batch_size`` of them wait. A flush then
reads the partition from the committed offset to the last position seen, takes the unbroken
run of messages (see :mod:`pipeline.stream.chain`), decodes them
with the batch pipeline's decoder, drops upstream duplicates, sanitises them with the batch
sanitiser (tokens from the HSM), and writes, in this order:

1. sealed lookup entries (unique names; entries are only ever added),
2. the flush record naming every file about to be written (see :mod:`pipeline.stream.flushes`),
3. sealed dead letters, then the events, Hive-partitioned, under deterministic names,

and only then commits the offset after the run. If the commit fails (broker away), no further
flush of that partition is written until it succeeds, so at most one flush per partition is
ever beyond the committed offset, and a replay overwrites exactly that one.

Late events (behind an already flushed window) are not dropped: the writer keeps everything in
the global window and writes late events with the next flush, counted as ``late_events``. If
the HSM fails, the flush raises :class:`~pipeline.errors.HsmUnavailable`: nothing of that flush
is written, nothing is committed, the pipeline stops (fail closed).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.coders import PickleCoder, VarIntCoder
from apache_beam.metrics import Metrics
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import (
    BagStateSpec,
    ReadModifyWriteStateSpec,
    TimerSpec,
    on_timer,
)
from apache_beam.utils.timestamp import Timestamp

from pipeline.config import Settings
from pipeline.errors import HsmUnavailable
from pipeline.gcpause import gc_paused
from pipeline.stream.chain import Split, ready_prefix
from pipeline.stream.dedupe import event_key, shared_memo
from pipeline.stream.flushes import (
    flush_stem,
    read_record,
    record_path,
    relative_path,
    remove_leftovers,
    write_record,
)
from pipeline.stream.messages import KafkaBatch
from pipeline.stream.status import BOARD, NAMESPACE, count

log = logging.getLogger(__name__)


_BACKENDS: dict[Any, tuple[Any, int]] = {}
_BACKENDS_LOCK = threading.Lock()


def _acquire_backend(pkcs11: Any) -> Any:
    """One HSM MAC backend per worker process, shared by the writers' threads.

    PKCS#11 login state belongs to the process: a second logged-in session on the same token
    in one process is refused (CKR_USER_ALREADY_LOGGED_IN), and Prism runs its workers as
    threads of one process. The session serialises its own HMAC calls.
    """
    from pipeline.tokenise import HsmMacBackend

    with _BACKENDS_LOCK:
        backend, users = _BACKENDS.get(pkcs11, (None, 0))
        if backend is None:
            backend = HsmMacBackend(pkcs11)
        _BACKENDS[pkcs11] = (backend, users + 1)
        return backend


_SHARED_TOKENS: dict[tuple[int, int], Any] = {}


def _shared_tokens(key_version: int, cache_size: int) -> Any:
    """The tokens the writers of this process have minted or made durable (one map per key
    version), so that a value one writer tokenised is not sent to the HSM again by another."""
    from pipeline.tokenise import SharedTokens

    with _BACKENDS_LOCK:
        found = _SHARED_TOKENS.get((key_version, cache_size))
        if found is None:
            found = _SHARED_TOKENS[(key_version, cache_size)] = SharedTokens(key_version, cache_size)
        return found


def _release_backend(pkcs11: Any) -> None:
    with _BACKENDS_LOCK:
        backend, users = _BACKENDS.get(pkcs11, (None, 0))
        if backend is None:
            return
        if users <= 1:
            del _BACKENDS[pkcs11]
            backend.close()
        else:
            _BACKENDS[pkcs11] = (backend, users - 1)


_PARTITION_LOCKS: dict[tuple[str, int], threading.Lock] = {}
# Per partition, one past the highest offset this process has been handed: kept outside the
# runner's state, so that a message lost from that state is still known to exist and is re-read.
_SEEN_UP_TO: dict[tuple[str, int], int] = {}


def _partition_lock(topic: str, partition: int) -> threading.Lock:
    """One flush of a partition at a time in this process.

    Beam runs a key's bundles one after another, but Prism has been seen to hand the same
    partition's elements to two worker threads at once; two overlapping flushes could then
    delete each other's files or commit out of order. The lock makes that impossible.
    """
    with _BACKENDS_LOCK:
        return _PARTITION_LOCKS.setdefault((topic, partition), threading.Lock())


@dataclass(frozen=True)
class StreamConfig:
    """Everything a streaming worker needs, all picklable; the custodians' *public* key only."""

    settings: Settings
    bootstrap: str
    out_uri: str
    lookup_uri: str
    custodian_public_key_der: bytes
    window_seconds: int
    fmt: str = "auto"


class _WriteExactlyOnce(beam.DoFn):  # type: ignore[misc]
    BUFFER = BagStateSpec("buffer", PickleCoder())  # (offset, chain_from) tuples, never message bytes
    BUFFERED = ReadModifyWriteStateSpec("buffered", VarIntCoder())
    TIMER_AT = ReadModifyWriteStateSpec("timer_at", VarIntCoder())  # micros of the pending flush
    FLUSHED_TO = ReadModifyWriteStateSpec("flushed_to", VarIntCoder())  # micros: windows closed so far
    FLUSH = TimerSpec("flush", TimeDomain.WATERMARK)

    def __init__(self, config: StreamConfig) -> None:
        self._config = config
        self._window_us = max(1, config.window_seconds) * 1_000_000

    def setup(self) -> None:
        from pipeline.sanitise import Sanitiser, load_policies
        from pipeline.sources.decode import Limits
        from pipeline.storage.fs import resolve
        from pipeline.stream.offsets import OffsetCommitter, RangeFetcher
        from pipeline.tokenise import Tokeniser

        s = self._config.settings
        try:
            backend = _acquire_backend(s.pkcs11)
        except HsmUnavailable:
            BOARD.set_hsm_down(True)
            log.error("the HSM is unavailable; the stream writes nothing until it is back (fail closed)")
            raise
        self._tokeniser: Any = Tokeniser(backend, s.tokenise.cache_size,
                                         _shared_tokens(backend.key_version, s.tokenise.cache_size))
        self._sanitiser = Sanitiser(load_policies(s.pipeline.policy_dir), self._tokeniser)
        self._limits = Limits(s.pipeline.max_record_bytes, s.pipeline.max_decompressed_bytes,
                              s.pipeline.max_depth)
        self._out = resolve(self._config.out_uri, s.storage)
        self._lookup = resolve(self._config.lookup_uri, s.storage)
        self._committer = OffsetCommitter(s.kafka, self._config.bootstrap)
        self._fetcher = RangeFetcher(s.kafka, self._config.bootstrap)
        self._memo = shared_memo(s.kafka.dedupe_horizon_seconds)
        self._hit_rate = Metrics.gauge(NAMESPACE, "cache_hit_permille")

    def teardown(self) -> None:
        if getattr(self, "_tokeniser", None) is not None:
            self._tokeniser = None
            _release_backend(self._config.settings.pkcs11)
        for name in ("_committer", "_fetcher"):
            client = getattr(self, name, None)
            if client is not None:
                client.close()

    def process(
        self,
        item: tuple[str, KafkaBatch],
        timestamp: Any = beam.DoFn.TimestampParam,
        buffer: Any = beam.DoFn.StateParam(BUFFER),
        buffered: Any = beam.DoFn.StateParam(BUFFERED),
        timer_at: Any = beam.DoFn.StateParam(TIMER_AT),
        flushed_to: Any = beam.DoFn.StateParam(FLUSHED_TO),
        flush: Any = beam.DoFn.TimerParam(FLUSH),
    ) -> Iterator[Any]:
        _, batch = item
        # Only positions go into the runner's state (which Flink checkpoints to storage): the
        # message bytes hold raw identifiers, and the flush reads them from Kafka again.
        buffer.add(tuple((m.offset, m.chain_from) for m in batch.messages))
        if batch.messages:
            key = (batch.topic, batch.partition)
            with _BACKENDS_LOCK:
                _SEEN_UP_TO[key] = max(_SEEN_UP_TO.get(key, 0), batch.messages[-1].offset + 1)
        n = (buffered.read() or 0) + len(batch.messages)
        buffered.write(n)
        count("messages_in", len(batch.messages))
        ts = int(timestamp.micros)
        closed = flushed_to.read()
        if closed is not None and ts < closed:
            count("late_messages")
        window_end = (ts // self._window_us + 1) * self._window_us
        if closed is not None and window_end <= closed:
            window_end = closed + self._window_us  # a late message rides with the next flush
        current = timer_at.read()
        target = window_end if current is None else min(current, window_end)
        flush.set(Timestamp(micros=target))  # (re)set every time: cheap, and survives lost state
        timer_at.write(target)
        if n >= self._config.settings.pipeline.batch_size:
            self._flush(batch.topic, batch.partition, buffer, buffered)
        return iter(())

    @on_timer(FLUSH)  # type: ignore[untyped-decorator]
    def on_flush(
        self,
        key: Any = beam.DoFn.KeyParam,
        fired: Any = beam.DoFn.TimestampParam,
        buffer: Any = beam.DoFn.StateParam(BUFFER),
        buffered: Any = beam.DoFn.StateParam(BUFFERED),
        timer_at: Any = beam.DoFn.StateParam(TIMER_AT),
        flushed_to: Any = beam.DoFn.StateParam(FLUSHED_TO),
        flush: Any = beam.DoFn.TimerParam(FLUSH),
    ) -> Iterator[Any]:
        topic, _, part = str(key).rpartition("/")
        fired_us = int(fired.micros)
        flushed_to.write(max(fired_us, flushed_to.read() or 0))
        timer_at.clear()
        count("window_flushes")
        more = self._flush(topic, int(part), buffer, buffered)
        if more or (buffered.read() or 0) > 0:
            again = fired_us + self._window_us  # something is still waiting: try again next window
            flush.set(Timestamp(micros=again))
            timer_at.write(again)
        BOARD.maybe_log()
        return iter(())

    # -- the flush ------------------------------------------------------------------------------

    def _settle(self, topic: str, partition: int) -> int | None:
        """The next offset to write: the committed offset, after committing any flush that is
        already durable but whose commit was lost. None if Kafka cannot say right now."""
        committed = self._committer.committed(topic, partition)
        while committed is not None:
            record = read_record(self._out, record_path(self._out, topic, partition, committed))
            if record is None or not record.done or record.end_offset <= committed:
                return committed
            if not self._committer.commit(topic, partition, record.end_offset):
                count("commit_failures")
                return None
            count("commits_recovered")
            committed = record.end_offset
        count("offset_lookup_failures")
        return None

    def _flush(self, topic: str, partition: int, buffer: Any, buffered: Any) -> bool:
        """Flush what is ready; True if messages known to exist were left for a later flush."""
        with _partition_lock(topic, partition):
            return self._flush_locked(topic, partition, buffer, buffered)

    def _flush_locked(self, topic: str, partition: int, buffer: Any, buffered: Any) -> bool:
        start = self._settle(topic, partition)
        if start is None:
            time.sleep(1.0)  # Kafka unreachable: keep everything buffered, retry at a later window
            return True
        positions = [p for group in buffer.read() for p in group]
        pending = [p for p in positions if p[0] >= start]
        count("messages_below_commit", len(positions) - len(pending))
        with _BACKENDS_LOCK:
            seen_up_to = _SEEN_UP_TO.get((topic, partition), 0)
        stop = max([seen_up_to, *(offset + 1 for offset, _ in pending)])
        fetched: list[Any] = []
        if stop > start:
            # The log is the truth: read the stretch from the committed offset to the last
            # message handed to this process (even one the runner's state lost) from Kafka.
            fetched = self._fetcher.fetch(topic, partition, start, stop)
        split = ready_prefix(fetched, start)
        if len(split.ready) < len(pending):
            count("messages_refetch_short", len(pending) - len(split.ready))
        log.debug("flush of a partition: start=%d buffered=%d ready=%d", start, len(pending), len(split.ready))
        if split.ready:
            self._write(topic, partition, split)
            if not self._committer.commit(topic, partition, split.end):
                count("commit_failures")  # durable and marked done: the next flush commits it
        left = tuple(p for p in pending if p[0] >= split.end)
        buffer.clear()
        if left:
            buffer.add(left)
        buffered.write(len(left))
        # Messages known to exist are still unwritten (Kafka slow or away): flush again later.
        return bool(split.end < stop)

    def _write(self, topic: str, partition: int, split: Split) -> None:
        with gc_paused():  # the flush's records are acyclic: see pipeline/gcpause.py
            self._write_paused(topic, partition, split)

    def _write_paused(self, topic: str, partition: int, split: Split) -> None:
        from pipeline.sinks import write_dead_letters, write_events, write_lookup
        from pipeline.sinks.dead_letters import DEAD_LETTER_DIR
        from pipeline.sinks.events import partition_dir
        from pipeline.sources.decode import decode
        from pipeline.sources.records import Record, Rejected

        started = time.monotonic()
        records: list[Record] = []
        rejected: list[Rejected] = []
        duplicates = skipped = 0
        for m in split.ready:
            position = f"kafka {topic}/{partition}@{m.offset}"
            for index, item in enumerate(decode(m.value, self._config.fmt, position, self._limits)):
                if isinstance(item, Record):
                    place = (topic, partition, m.offset, index)
                    if self._memo.is_duplicate(event_key(item.kind, item.payload), place, m.timestamp_ms):
                        duplicates += 1
                    else:
                        records.append(item)
                elif isinstance(item, Rejected):
                    rejected.append(item)
                else:
                    skipped += 1
        calls, hits = self._tokeniser.hsm_calls, self._tokeniser.cache_hits
        try:
            batch = self._sanitiser.sanitise(records)
        except HsmUnavailable:
            BOARD.set_hsm_down(True)
            log.error("the HSM became unavailable; this flush is not written and no offset is committed "
                      "(fail closed)")
            log.error("%s", BOARD.line())
            self._tokeniser.drain()
            raise
        entries = self._tokeniser.drain()
        s = self._config.settings
        der = self._config.custodian_public_key_der
        out = self._out
        first = split.ready[0].offset
        stem = flush_stem(topic, partition, first)
        # 1. sealed lookup entries: added under a unique name, never overwritten
        written_entries = write_lookup(self._lookup, der, s.pkcs11.oaep_hash, entries,
                                       f"{stem}-{uuid.uuid4().hex[:12]}")
        self._tokeniser.entries_written(entries)  # durable now: other writers may reuse them
        # 2. the flush record (intent), naming every file this attempt and any earlier one writes
        rejected_all = rejected + batch.rejected
        planned: set[str] = set()
        if batch.table.num_rows:
            pairs = set(zip(batch.table.column("source").to_pylist(),
                            batch.table.column("event_date").to_pylist(), strict=True))
            planned = {relative_path(out, partition_dir(out, src, day) + f"/part-{stem}.parquet")
                       for src, day in pairs}
        if rejected_all:
            planned.add(f"{DEAD_LETTER_DIR}/part-{stem}.parquet")
        rec_path = record_path(out, topic, partition, first)
        earlier = read_record(out, rec_path)
        listed = set(earlier.files) if earlier is not None else set()
        write_record(out, rec_path, listed | planned, split.end, done=False)
        # 3. dead letters and events under deterministic names, then the leftovers of an
        #    earlier attempt go, then the record says the flush is complete
        dead = write_dead_letters(out, self._lookup, der, s.pkcs11.oaep_hash, rejected_all, stem)
        files = write_events(out, batch.table, stem)
        removed = remove_leftovers(out, listed, planned)
        write_record(out, rec_path, planned, split.end, done=True)
        rows = sum(f.rows for f in files)
        calls = self._tokeniser.hsm_calls - calls
        hits = self._tokeniser.cache_hits - hits
        count("flushes")
        count("events_in", len(records) + duplicates)
        count("events_out", rows)
        count("dead_letters", dead)
        count("duplicates_dropped", duplicates)
        count("skipped", skipped)
        count("hsm_calls", calls)
        count("cache_hits", hits)
        count("lookup_entries", written_entries)
        count("files_written", len(files))
        count("files_removed_from_earlier_attempt", removed)
        total = self._tokeniser.hsm_calls + self._tokeniser.cache_hits
        if total:
            self._hit_rate.set(int(1000 * self._tokeniser.cache_hits / total))
        BOARD.set_hsm_down(False)
        log.debug("flushed %d messages in %.2fs", len(split.ready), time.monotonic() - started)


class WriteExactlyOnce(beam.PTransform):  # type: ignore[misc]
    """Keyed by partition → the stateful writer (see module docstring)."""

    def __init__(self, config: StreamConfig) -> None:
        super().__init__()
        self._config = config

    def expand(self, messages: Any) -> Any:
        from pipeline.stream.messages import partition_key

        return (
            messages
            | "ByPartition" >> beam.Map(lambda b: (partition_key(b.topic, b.partition), b))
            .with_output_types(tuple[str, Any])
            | "Write" >> beam.ParDo(_WriteExactlyOnce(self._config))
        )
