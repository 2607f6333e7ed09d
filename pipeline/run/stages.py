"""The batch pipeline's stages as Beam transforms.

``Pseudonymise`` only wires: read tasks → ``_Decode`` → ``_Sanitise`` → ``_Write``. Each DoFn
takes picklable settings in its constructor and opens its clients (HSM session, filesystems)
in ``setup()``. Elements are whole batches (up to ``pipeline.batch_size`` records), so the
per-element overhead of the runner is paid once per batch, not once per event.
"""

from __future__ import annotations

import json
import os
import pickle
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam.metrics import Metrics

from pipeline.config import Settings
from pipeline.gcpause import gc_paused
from pipeline.sources.decode import Limits, decode
from pipeline.sources.files import ReadTask, read_task
from pipeline.sources.records import Record, Rejected, Skipped
from pipeline.tokenise.tokeniser import NewEntry

METRICS_NAMESPACE = "auditveil"


@dataclass(frozen=True)
class StageConfig:
    """Everything a worker needs, all picklable. Holds the custodians' *public* key only."""

    settings: Settings
    out_uri: str
    lookup_uri: str
    fmt: str
    custodian_public_key_der: bytes
    progress_dir: str = ""


@dataclass
class Chunk:
    stem: str
    records: list[Record]
    rejected: list[Rejected]
    counts: Counter[str] = field(default_factory=Counter)
    bytes_done: int = 0


@dataclass
class SanitisedChunk:
    stem: str
    table: pa.Table
    rejected: list[Rejected]
    entries: list[NewEntry]
    counts: Counter[str]
    bytes_done: int


class _BatchCoder(beam.coders.Coder):  # type: ignore[misc]
    """Pickle for the batch elements, with a size estimate that does not encode them.

    Beam samples element sizes for its metrics by encoding elements (the first ten of every
    bundle, then fewer). Our elements are whole batches, so with the default estimate a batch
    of 20,000 records was pickled just to be measured: about 7% of a run's CPU.
    """

    def encode(self, value: Any) -> bytes:
        return pickle.dumps(value, pickle.HIGHEST_PROTOCOL)

    def decode(self, encoded: bytes) -> Any:
        return pickle.loads(encoded)  # noqa: S301 - the runner's own channel between our stages

    def is_deterministic(self) -> bool:
        return False

    def estimate_size(self, value: Any) -> int:
        if isinstance(value, SanitisedChunk):
            return int(value.table.nbytes) + 256 * (len(value.entries) + len(value.rejected))
        if isinstance(value, Chunk):
            return max(value.bytes_done, 1024 * len(value.records))
        return 1024


beam.coders.registry.register_coder(Chunk, _BatchCoder)
beam.coders.registry.register_coder(SanitisedChunk, _BatchCoder)


def _count(counts: Counter[str]) -> None:
    for name, value in counts.items():
        if value:
            Metrics.counter(METRICS_NAMESPACE, name).inc(value)


class _Decode(beam.DoFn):  # type: ignore[misc]
    """Read one task's bytes and decode them into chunks of records."""

    def __init__(self, config: StageConfig) -> None:
        self._config = config

    def setup(self) -> None:
        p = self._config.settings.pipeline
        self._limits = Limits(p.max_record_bytes, p.max_decompressed_bytes, p.max_depth)
        self._batch = p.batch_size

    def process(self, task: ReadTask) -> Iterator[Chunk]:
        # The collector is paused while a task is read, sanitised and written (the fused
        # stages run inside this generator); see pipeline/gcpause.py.
        with gc_paused():
            yield from self._decode(task)

    def _decode(self, task: ReadTask) -> Iterator[Chunk]:
        data = read_task(task, self._config.settings.storage)
        index = 0
        chunk = Chunk(f"{task.task_id}-{index:04d}", [], [])
        for item in decode(data, self._config.fmt, task.display, self._limits, task.first_line):
            if isinstance(item, Record):
                chunk.records.append(item)
                if len(chunk.records) >= self._batch:
                    yield chunk
                    index += 1
                    chunk = Chunk(f"{task.task_id}-{index:04d}", [], [])
            elif isinstance(item, Rejected):
                chunk.rejected.append(item)
                chunk.counts[f"dead_letters.{item.error_class}"] += 1
            elif isinstance(item, Skipped):
                chunk.counts[f"skipped.{item.reason}"] += 1
        chunk.bytes_done = task.size
        chunk.counts["files_read"] += 1 if task.start == 0 else 0
        yield chunk


class _Sanitise(beam.DoFn):  # type: ignore[misc]
    """Apply the policy and tokenise in the HSM; one HSM session per worker."""

    def __init__(self, config: StageConfig) -> None:
        self._config = config

    def setup(self) -> None:
        from pipeline.sanitise import Sanitiser, load_policies
        from pipeline.tokenise import HsmMacBackend, Tokeniser

        s = self._config.settings
        self._tokeniser = Tokeniser(HsmMacBackend(s.pkcs11), s.tokenise.cache_size)
        self._sanitiser = Sanitiser(load_policies(s.pipeline.policy_dir), self._tokeniser)

    def process(self, chunk: Chunk) -> Iterator[SanitisedChunk]:
        calls, hits = self._tokeniser.hsm_calls, self._tokeniser.cache_hits
        batch = self._sanitiser.sanitise(chunk.records)
        # Done with the records: free them now, while the collector is still paused. The runner
        # keeps a reference to its last input element, so they would otherwise outlive the
        # pause and the collector's first pass after it would walk all of them (60-80 ms a
        # task). Nothing reads a chunk twice: it goes to this stage only, once.
        chunk.records = []
        counts = chunk.counts + batch.counts
        counts["hsm_calls"] += self._tokeniser.hsm_calls - calls
        counts["cache_hits"] += self._tokeniser.cache_hits - hits
        entries = self._tokeniser.drain()
        counts["tokens_minted"] += len(entries)
        yield SanitisedChunk(chunk.stem, batch.table, chunk.rejected + batch.rejected, entries, counts,
                             chunk.bytes_done)

    def teardown(self) -> None:
        tok = getattr(self, "_tokeniser", None)
        if tok is not None:
            tok.close()


class _Write(beam.DoFn):  # type: ignore[misc]
    """Write lookup entries, then dead letters, then events: a token never reaches analysts
    before its sealed entry is durable."""

    def __init__(self, config: StageConfig) -> None:
        self._config = config

    def setup(self) -> None:
        from pipeline.storage.fs import resolve

        s = self._config.settings
        self._out = resolve(self._config.out_uri, s.storage)
        self._lookup = resolve(self._config.lookup_uri, s.storage)
        self._progress_file = (
            os.path.join(self._config.progress_dir, f"{os.getpid()}-{uuid.uuid4().hex}.json")
            if self._config.progress_dir else ""
        )
        self._done: Counter[str] = Counter()

    def process(self, item: SanitisedChunk) -> Iterator[dict[str, Any]]:
        from pipeline.sinks import write_dead_letters, write_events, write_lookup

        key = self._config.custodian_public_key_der
        oaep = self._config.settings.pkcs11.oaep_hash
        counts = item.counts
        counts["lookup_entries"] += write_lookup(self._lookup, key, oaep, item.entries, item.stem)
        counts["dead_letters_written"] += write_dead_letters(
            self._out, self._lookup, key, oaep, item.rejected, item.stem
        )
        files = write_events(self._out, item.table, item.stem)
        counts["files_written"] += len(files)
        counts["bytes_written"] += sum(f.bytes for f in files)
        counts["rows_written"] += sum(f.rows for f in files)
        _count(counts)
        self._report(item, counts)
        yield {"files": [f.path for f in files]}

    def _report(self, item: SanitisedChunk, counts: Counter[str]) -> None:
        if not self._progress_file:
            return
        self._done["bytes"] += item.bytes_done
        self._done["events"] += sum(v for k, v in counts.items() if k.startswith("events_in."))
        tmp = self._progress_file + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(dict(self._done), fh)
        os.replace(tmp, self._progress_file)


class Pseudonymise(beam.PTransform):  # type: ignore[misc]
    """Read tasks → pseudonymised events, sealed lookup entries and dead letters on storage."""

    def __init__(self, config: StageConfig) -> None:
        super().__init__()
        self._config = config

    def expand(self, tasks: beam.PCollection) -> beam.PCollection:
        return (
            tasks
            | "Decode" >> beam.ParDo(_Decode(self._config)).with_output_types(Chunk)
            | "Sanitise" >> beam.ParDo(_Sanitise(self._config)).with_output_types(SanitisedChunk)
            | "Write" >> beam.ParDo(_Write(self._config))
        )
