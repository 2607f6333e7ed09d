"""The boundary to kafka-python: client settings from ``[kafka]``, and errors translated.

Every Kafka client auditveil opens (the partition reader, the offset committer, partition
discovery) is built here from :class:`~pipeline.config.KafkaSettings`, so that SASL and TLS
settings reach all of them. Library exceptions never leave this module with their text: a
broker address or topic name could be in it, and the operator only needs to know *what*
failed. The SASL password is read from the :class:`~pipeline.config.Secret` at the last
moment and is never logged.
"""

from __future__ import annotations

import logging
from typing import Any

from pipeline.config import KafkaSettings
from pipeline.errors import ConfigError, InputError

log = logging.getLogger(__name__)

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER", "GSSAPI")


def client_config(kafka: KafkaSettings, bootstrap: str = "") -> dict[str, Any]:
    """Keyword arguments shared by every kafka-python client auditveil opens."""
    servers = [s.strip() for s in (bootstrap or kafka.bootstrap).split(",") if s.strip()]
    if not servers:
        raise ConfigError("no Kafka bootstrap server: pass --kafka-bootstrap HOST:PORT or set kafka.bootstrap")
    proto = kafka.security_protocol.upper()
    if proto not in SECURITY_PROTOCOLS:
        raise ConfigError("kafka.security_protocol must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")
    cfg: dict[str, Any] = {
        "bootstrap_servers": servers,
        "security_protocol": proto,
        "client_id": "auditveil",
        "request_timeout_ms": 30_000,
        "reconnect_backoff_ms": 200,
        "reconnect_backoff_max_ms": 5_000,
    }
    if proto in ("SSL", "SASL_SSL"):
        cfg["ssl_check_hostname"] = True
        if kafka.ssl_cafile:
            cfg["ssl_cafile"] = kafka.ssl_cafile
    if proto.startswith("SASL_"):
        mech = kafka.sasl_mechanism.upper()
        if mech not in SASL_MECHANISMS or not mech:
            raise ConfigError("kafka.sasl_mechanism must be PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER or GSSAPI")
        cfg["sasl_mechanism"] = mech
        if mech in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
            if not kafka.sasl_username or kafka.sasl_password is None:
                raise ConfigError(
                    "SASL needs kafka.sasl_username and AUDITVEIL_KAFKA_SASL_PASSWORD in the environment"
                )
            cfg["sasl_plain_username"] = kafka.sasl_username
            cfg["sasl_plain_password"] = kafka.sasl_password.reveal()
    return cfg


def open_consumer(kafka: KafkaSettings, bootstrap: str = "", *, group: bool = True, **extra: Any) -> Any:
    """A KafkaConsumer with manual assignment and no auto-commit (the pipeline commits)."""
    from kafka import KafkaConsumer
    from kafka.errors import KafkaError

    cfg = client_config(kafka, bootstrap)
    cfg.update(
        enable_auto_commit=False,
        group_id=kafka.group_id if group else None,
        auto_offset_reset=kafka.start,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_max_wait_ms=200,
        consumer_timeout_ms=1_000,
    )
    cfg.update(extra)
    try:
        return KafkaConsumer(**cfg)
    except KafkaError as exc:
        raise InputError(f"cannot connect to Kafka ({_reason(exc)})") from None
    except (OSError, ValueError):
        raise InputError("cannot connect to Kafka (bad address or TLS settings)") from None


def reason(exc: BaseException) -> str:
    """An identifier-free label for a Kafka failure (the class name only, never its text)."""
    return _reason(exc)


def _reason(exc: BaseException) -> str:
    name = type(exc).__name__
    return {
        "NoBrokersAvailable": "no broker reachable",
        "KafkaTimeoutError": "timed out",
        "KafkaConnectionError": "connection lost",
        "NodeNotReadyError": "broker not ready",
        "CommitFailedError": "offset commit refused",
        "UnknownTopicOrPartitionError": "unknown topic or partition",
        "TopicAuthorizationFailedError": "not authorised for the topic",
        "GroupAuthorizationFailedError": "not authorised for the consumer group",
        "SaslAuthenticationFailedError": "SASL authentication failed",
    }.get(name, "Kafka error " + name)


def close_quietly(consumer: Any | None) -> None:
    """Close a consumer without committing anything; best effort (it may already be broken)."""
    if consumer is None:
        return
    try:
        consumer.close(autocommit=False)
    except Exception:  # noqa: S110 - closing is best effort
        pass
