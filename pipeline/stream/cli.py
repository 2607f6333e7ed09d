"""``auditveil run --streaming``: the Kafka options of ``auditveil run`` and their handler.

``pipeline.run.cli`` calls :func:`add_run_options` while building the ``run`` parser and
:func:`run_streaming` when ``--streaming`` is given. ``--runner`` and ``--beam-option`` come
from the batch parser and are passed through to Beam unchanged.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from pipeline.config import Settings, with_overrides
from pipeline.errors import ConfigError, InputError

BEAM_VERSION = "2.77.0"
DEFAULT_PRISM = os.path.join(os.environ.get("AUDITVEIL_TOOLS", "/opt/auditveil/tools"), "bin",
                             f"prism-{BEAM_VERSION}")

STREAMING_HELP = """\
streaming from Kafka (--streaming): read the topics continuously, write pseudonymised Parquet
in event-time windows, and commit the consumer group's offsets only after every event below
them is durable (events, lookup entries or dead letters). A restart resumes at the committed
offsets and rewrites the same files, so no event is lost or written twice. --until-end reads
up to the end offsets seen at start and stops (catch-up, backfill, tests). Runs on Beam's
Prism runner by default (--prism-location, built by scripts/setup.sh); --runner FlinkRunner
and --beam-option pass everything through to another runner. SASL/TLS: the [kafka] settings
(AUDITVEIL_KAFKA_SECURITY_PROTOCOL, _SASL_MECHANISM, _SASL_USERNAME, _SASL_PASSWORD,
_SSL_CAFILE)."""


def add_run_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("streaming from Kafka", STREAMING_HELP)
    g.add_argument("--streaming", action="store_true", help="read Kafka topics instead of --input files")
    g.add_argument("--kafka-bootstrap", metavar="HOST:PORT",
                   help="Kafka bootstrap servers, comma-separated (default: kafka.bootstrap)")
    g.add_argument("--topic", metavar="NAME", action="append", default=[], help="topic to read (repeatable)")
    g.add_argument("--until-end", action="store_true",
                   help="stop at the end offsets seen at start instead of running forever")
    g.add_argument("--window", metavar="SECONDS", type=int,
                   help="event-time window: output is cut when the watermark passes each window's end "
                        "(default: kafka.window_seconds)")
    g.add_argument("--group", metavar="ID", help="consumer group whose offsets are used (default: kafka.group_id)")
    g.add_argument("--start", choices=("earliest", "latest"),
                   help="where to start when the group has no committed offset (default: kafka.start)")
    g.add_argument("--prism-location", metavar="PATH",
                   help=f"the Prism runner binary (default: {DEFAULT_PRISM}); never downloaded")
    g.add_argument("--status-seconds", metavar="SECONDS", type=float, default=10.0,
                   help="how often to log the one-line status (default: 10)")


def _beam_args(args: argparse.Namespace) -> list[str]:
    from pipeline.run.cli import beam_args

    out = beam_args(args)
    runner = getattr(args, "runner", None) or "PrismRunner"
    if not any(a.startswith("--runner") for a in out):
        out.append(f"--runner={runner}")
    if runner.lower().replace("runner", "") == "prism":
        prism = args.prism_location or DEFAULT_PRISM
        if not os.access(prism, os.X_OK):
            raise ConfigError("the Prism runner binary was not found: run scripts/setup.sh or pass --prism-location")
        out += [f"--prism_location={prism}", "--prism_log_level=warn"]
    if "--streaming" not in out:
        out.append("--streaming")
    if not args.until_end and not any(a.startswith("--job_server_timeout") for a in out):
        # Beam's portable runner uses job_server_timeout (default 300 s) as the gRPC deadline of
        # the job's state stream: an unbounded run on Prism would die after five minutes. One day
        # (a year-long deadline made Prism miss new partitions in tests); restart daily, or run
        # on Flink for long-lived production streams.
        out.append("--job_server_timeout=86400")
    return out


def stream_settings(args: argparse.Namespace, settings: Settings) -> Settings:
    changes: dict[str, Any] = {}
    if args.kafka_bootstrap:
        changes["bootstrap"] = args.kafka_bootstrap
    if args.group:
        changes["group_id"] = args.group
    if args.start:
        changes["start"] = args.start
    if args.window is not None:
        if args.window < 1:
            raise ConfigError("--window must be 1 second or more")
        changes["window_seconds"] = args.window
    return with_overrides(settings, "kafka", **changes) if changes else settings


def check_topics(settings: Settings, topics: list[str]) -> None:
    """Fail early, with a clear message, if Kafka is unreachable or a topic does not exist."""
    from kafka.errors import KafkaError

    from pipeline.stream.client import open_consumer, reason

    consumer = open_consumer(settings.kafka, group=False)
    try:
        for topic in topics:
            if not consumer.partitions_for_topic(topic):
                raise InputError("a --topic does not exist on the Kafka cluster (or is not readable)")
    except KafkaError as exc:
        raise InputError(f"cannot read topic metadata from Kafka ({reason(exc)})") from None
    finally:
        consumer.close(autocommit=False)


def _log_to_stderr(name: str, level: int) -> None:
    """Our own handler: Beam's workers run in this process and may reconfigure the root logger."""
    logger = logging.getLogger(name)
    logger.setLevel(level)
    if not any(getattr(h, "_auditveil", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler._auditveil = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.propagate = False


def run_streaming(args: argparse.Namespace, settings: Settings) -> int:
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.run.cli import check_jurisdiction, check_locations, custodian_key
    from pipeline.sanitise.policy import load_policies
    from pipeline.stream.pipeline import build_pipeline, run_pipeline
    from pipeline.stream.status import BOARD, STATUS_LOGGER
    from pipeline.stream.writer import StreamConfig

    if args.input:
        raise ConfigError("--streaming reads Kafka topics; do not also give --input")
    if not args.topic:
        raise ConfigError("--streaming needs at least one --topic NAME")
    settings = stream_settings(args, settings)
    if not settings.kafka.bootstrap:
        raise ConfigError("--streaming needs --kafka-bootstrap HOST:PORT (or kafka.bootstrap)")
    check_locations(args.out, args.lookup)
    check_jurisdiction(settings, args)
    load_policies(settings.pipeline.policy_dir)  # a bad policy fails before any work
    der = custodian_key(settings)  # fail closed: no HSM, no stream
    check_topics(settings, args.topic)
    _log_to_stderr(STATUS_LOGGER, logging.INFO)
    _log_to_stderr("pipeline.stream", logging.INFO if getattr(args, "verbose", False) else logging.WARNING)
    BOARD.interval = max(1.0, args.status_seconds)
    config = StreamConfig(settings, settings.kafka.bootstrap, args.out, args.lookup, der,
                          settings.kafka.window_seconds, getattr(args, "format", "auto"))
    options = PipelineOptions(_beam_args(args))
    p = build_pipeline(config, args.topic, args.until_end, options)
    result = run_pipeline(p, BOARD.interval)
    t = result.totals
    print(f"streamed: events_in={t.get('events_in', 0)} events_out={t.get('events_out', 0)} "
          f"dead_letters={t.get('dead_letters', 0)} duplicates={t.get('duplicates_dropped', 0)} "
          f"flushes={t.get('flushes', 0)} hsm_calls={t.get('hsm_calls', 0)} "
          f"lookup_entries={t.get('lookup_entries', 0)} state={result.state}")
    return 0
