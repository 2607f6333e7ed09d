"""Kafka client settings (SASL/TLS passed through, secrets kept) and the streaming CLI options."""

from __future__ import annotations

import argparse

import pytest

from pipeline.cli import build_parser
from pipeline.config import KafkaSettings, Secret, Settings
from pipeline.errors import ConfigError
from pipeline.stream.cli import _beam_args, stream_settings
from pipeline.stream.client import client_config


def test_sasl_and_tls_settings_reach_the_client() -> None:
    kafka = KafkaSettings(bootstrap="b1:9093, b2:9093", security_protocol="sasl_ssl", sasl_mechanism="SCRAM-SHA-512",
                          sasl_username="svc-auditveil", sasl_password=Secret("s3cret"), ssl_cafile="/etc/ca.pem")
    cfg = client_config(kafka)
    assert cfg["bootstrap_servers"] == ["b1:9093", "b2:9093"]
    assert cfg["security_protocol"] == "SASL_SSL" and cfg["sasl_mechanism"] == "SCRAM-SHA-512"
    assert cfg["sasl_plain_username"] == "svc-auditveil" and cfg["sasl_plain_password"] == "s3cret"
    assert cfg["ssl_cafile"] == "/etc/ca.pem" and cfg["ssl_check_hostname"] is True
    assert "s3cret" not in repr(kafka)


def test_client_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="bootstrap"):
        client_config(KafkaSettings())
    with pytest.raises(ConfigError, match="security_protocol"):
        client_config(KafkaSettings(bootstrap="b:1", security_protocol="TLS"))
    with pytest.raises(ConfigError, match="SASL_PASSWORD"):
        client_config(KafkaSettings(bootstrap="b:1", security_protocol="SASL_SSL", sasl_mechanism="PLAIN"))


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["run", "--out", "o", "--lookup", "l", "--streaming", *argv])


def test_streaming_options_override_settings() -> None:
    args = _args("--kafka-bootstrap", "127.0.0.1:9092", "--topic", "a", "--topic", "b", "--group", "g",
                 "--start", "latest", "--window", "5", "--until-end")
    s = stream_settings(args, Settings())
    assert args.topic == ["a", "b"] and args.until_end
    assert (s.kafka.bootstrap, s.kafka.group_id, s.kafka.start, s.kafka.window_seconds) == (
        "127.0.0.1:9092", "g", "latest", 5)
    with pytest.raises(ConfigError):
        stream_settings(_args("--window", "0"), Settings())


def test_runner_options_pass_through_and_prism_is_never_downloaded(tmp_path: object) -> None:
    flink = _beam_args(_args("--runner", "FlinkRunner", "--beam-option", "flink_master=fl:8081"))
    assert "--runner=FlinkRunner" in flink and "--flink_master=fl:8081" in flink and "--streaming" in flink
    assert not any(a.startswith("--prism") for a in flink)
    with pytest.raises(ConfigError, match="Prism"):
        _beam_args(_args("--prism-location", "/nonexistent/prism"))
