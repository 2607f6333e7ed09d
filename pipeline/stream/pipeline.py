"""The streaming pipeline: Kafka → exactly-once Parquet, on Prism locally or any Beam runner.

``ReadFromKafka`` (the splittable DoFn source) → ``WriteExactlyOnce`` (per-partition stateful
writer: decode, dedupe, sanitise with the HSM, write, then commit offsets). Runner options are
passed through untouched, so the same graph runs on Prism (``--runner=PrismRunner
--prism_location=…``), Flink (``--runner=FlinkRunner --flink_master=…``) or another runner.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.errors import AuditveilError, HsmUnavailable, InputError, SinkError
from pipeline.run.failures import raised_errors
from pipeline.stream.kafka_source import ReadFromKafka
from pipeline.stream.status import BOARD, STATUS_LOGGER
from pipeline.stream.writer import StreamConfig, WriteExactlyOnce

log = logging.getLogger(STATUS_LOGGER)


@dataclass(frozen=True)
class StreamResult:
    totals: dict[str, int]
    state: str


def build_pipeline(config: StreamConfig, topics: Sequence[str], until_end: bool,
                   options: PipelineOptions) -> beam.Pipeline:
    p = beam.Pipeline(options=options)
    _ = (
        p
        | "ReadKafka" >> ReadFromKafka(config.settings.kafka, config.bootstrap, topics, until_end=until_end,
                                      discovery_seconds=float(max(1, config.settings.kafka.discovery_seconds)),
                                      values=False)  # the writer reads the bytes from Kafka
        | "WriteExactlyOnce" >> WriteExactlyOnce(config)
    )
    return p


def translate_failure(exc: BaseException) -> AuditveilError:
    """A runner failure → one of our errors, without echoing the runner's text."""
    if isinstance(exc, AuditveilError):
        return exc
    found = raised_errors(exc)
    if found & {"HsmUnavailable", "KeyNotFound"}:
        return HsmUnavailable(
            "the HSM became unavailable; the stream stopped writing (fail closed). Offsets of unwritten "
            "events were not committed: restart when the HSM is back and it resumes where it stopped"
        )
    if "SinkError" in found:
        return SinkError("an output location failed; offsets of unwritten events were not committed. Restart to resume")
    if "InputError" in found:
        return InputError("Kafka could not be read (see the log above); restart to resume")
    return AuditveilError(f"the streaming pipeline failed in a worker ({type(exc).__name__}); restart to resume")


def run_pipeline(p: beam.Pipeline, status_seconds: float) -> StreamResult:
    """Run ``p`` until it finishes (bounded) or is interrupted; log a status line meanwhile."""
    stop = threading.Event()

    def report() -> None:
        while not stop.wait(status_seconds):
            log.info("%s", BOARD.line())

    reporter = threading.Thread(target=report, name="auditveil-status", daemon=True)
    reporter.start()
    result: Any = None
    try:
        result = p.run()
        state = result.wait_until_finish()
    except KeyboardInterrupt:
        if result is not None:
            try:
                result.cancel()
            except Exception:  # noqa: S110 - the process is leaving anyway
                pass
        raise
    except Exception as exc:
        log.error("%s", BOARD.line())
        raise translate_failure(exc) from None
    finally:
        stop.set()
    log.info("%s", BOARD.line())
    return StreamResult(BOARD.snapshot(), str(state))
