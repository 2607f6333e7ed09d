"""``auditveil lookup purge`` and ``forget``: crypto-shredding and erasure, audited, then refused reveals."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pipeline.errors import ConfigError
from pipeline.lookup.cli import parse_duration
from pipeline.reid import signing
from tests.reid.conftest import CliRunner
from tests.reid.helpers import Vault

Keys = dict[str, Ed25519PrivateKey]


def _custodians(run_cli: CliRunner, keys: Keys, tmp_path: Path) -> dict[str, Path]:
    paths = {}
    for name in ("alice", "bob"):
        code, _, err = run_cli("reid", "keygen", str(tmp_path / name))
        assert code == 0, err
        pub = str(tmp_path / f"{name}.pub.pem")
        assert run_cli("reid", "custodian", "add", name, "--public-key", pub)[0] == 0
        paths[name] = tmp_path / f"{name}.key.pem"
    return paths


def _approved_request(run_cli: CliRunner, signing_keys: dict[str, Path], tokens: list[str]) -> str:
    code, out, err = run_cli("reid", "request", "--case", "DSR-12", "--reason", "data subject access request",
                             "--requester", "ivan", *tokens)
    assert code == 0, err
    rid = out.strip()
    for name, key in signing_keys.items():
        assert run_cli("reid", "approve", rid, "--custodian", name, "--signing-key", str(key))[0] == 0
    return rid


def _log(run_cli: CliRunner) -> list[dict[str, object]]:
    code, out, _ = run_cli("reid", "log")
    assert code == 0
    return [orjson.loads(line) for line in out.splitlines()]


def test_purge_makes_entries_no_longer_recoverable(run_cli: CliRunner, fresh_vault: Vault,
                                                   keys: Keys, tmp_path: Path) -> None:
    signing_keys = _custodians(run_cli, keys, tmp_path)
    tokens = sorted(fresh_vault.values)
    before = _approved_request(run_cli, signing_keys, tokens)
    after = _approved_request(run_cli, signing_keys, tokens)

    code, out, err = run_cli("lookup", "purge", "--older-than", "30d", "--lookup", fresh_vault.uri)
    assert code == 0 and "destroyed 0" in out, err
    code, out, err = run_cli("reid", "reveal", before, "--requester", "ivan", "--lookup", fresh_vault.uri)
    assert code == 0 and orjson.loads(out) == fresh_vault.values, err

    time.sleep(1.1)  # DEK creation times have one-second resolution
    code, out, err = run_cli("lookup", "purge", "--older-than", "1s", "--lookup", fresh_vault.uri)
    assert code == 0 and "destroyed 2 wrapped data key(s)" in out, err
    assert not list((Path(fresh_vault.uri) / "deks").glob("*.json"))

    code, out, err = run_cli("reid", "reveal", after, "--requester", "ivan", "--lookup", fresh_vault.uri)
    assert code == 0 and orjson.loads(out) == {}
    assert err.count("no longer recoverable") == len(tokens)

    purges = [r for r in _log(run_cli) if r["action"] == "lookup_purged"]
    assert [p["detail"]["deks_destroyed"] for p in purges] == [0, 2]  # type: ignore[index]
    assert purges[-1]["detail"]["older_than"] == "1s"  # type: ignore[index]
    revealed = [r for r in _log(run_cli) if r["action"] == "revealed"][-1]
    assert sorted(revealed["detail"]["unrecoverable"]) == tokens  # type: ignore[index]
    assert run_cli("reid", "log", "--verify")[0] == 0


def test_forget_erases_one_subject(run_cli: CliRunner, fresh_vault: Vault,
                                   keys: Keys, tmp_path: Path) -> None:
    signing_keys = _custodians(run_cli, keys, tmp_path)
    subject = fresh_vault.token_of("jürgen.müller@example.eu")
    tokens = sorted(fresh_vault.values)
    rid = _approved_request(run_cli, signing_keys, tokens)

    code, out, err = run_cli("lookup", "forget", subject, "--lookup", fresh_vault.uri)
    assert code == 0 and "removed 1 lookup entry for 1 token(s)" in out, err

    code, out, err = run_cli("reid", "reveal", rid, "--requester", "ivan", "--lookup", fresh_vault.uri)
    assert code == 0, err
    expected = {t: v for t, v in fresh_vault.values.items() if t != subject}
    assert orjson.loads(out) == expected
    assert f"{subject}: no longer recoverable" in err
    forgot = [r for r in _log(run_cli) if r["action"] == "lookup_forgotten"]
    assert forgot[0]["tokens"] == [subject] and forgot[0]["detail"] == {"entries_removed": 1}
    assert "jürgen" not in str(_log(run_cli))
    assert run_cli("reid", "log", "--verify")[0] == 0


def test_forget_and_purge_usage_errors(run_cli: CliRunner, tmp_path: Path) -> None:
    code, _, err = run_cli("lookup", "forget", "alice@example.com", "--lookup", str(tmp_path))
    assert code == 2 and "must look like" in err and "alice@example.com" not in err
    code, _, err = run_cli("lookup", "purge", "--older-than", "soon", "--lookup", str(tmp_path))
    assert code == 2 and "duration" in err
    code, _, err = run_cli("lookup", "purge", "--older-than", "30d")
    assert code == 2 and "no lookup location" in err
    assert run_cli("lookup")[0] == 2


@pytest.mark.parametrize(("text", "seconds"), [
    ("45s", 45), ("30m", 1800), ("12h", 43_200), ("90d", 7_776_000), ("2w", 1_209_600), ("1d12h", 129_600),
    (" 400D ", 34_560_000),
])
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == dt.timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "10", "d", "1y", "-1d", "0d", "1.5h", "1d 2h"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_duration(text)


def test_sign_command_for_the_http_service(run_cli: CliRunner, tmp_path: Path) -> None:
    assert run_cli("reid", "keygen", str(tmp_path / "c"))[0] == 0
    message = "auditveil-reid/v1:approve:" + "ab" * 32
    code, out, _ = run_cli("reid", "sign", message, "--signing-key", str(tmp_path / "c.key.pem"))
    assert code == 0
    pub = signing.read_public_key_file(str(tmp_path / "c.pub.pem"))
    assert signing.verify(pub, message.encode(), out.strip())
    assert run_cli("reid", "sign", "anything else", "--signing-key", str(tmp_path / "c.key.pem"))[0] == 2
