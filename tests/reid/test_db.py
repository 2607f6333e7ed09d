"""State storage and failure modes: file permissions, bad URLs, unreachable servers, a failing HSM."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pipeline.config import ReidSettings, Secret, Settings
from pipeline.errors import ConfigError, HsmUnavailable, SinkError
from pipeline.reid.db import Database, state_dir
from pipeline.reid.reveal import lookup_opener
from pipeline.reid.workflow import Reid
from tests.reid.helpers import Vault, sig


def test_sqlite_state_is_owner_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDITVEIL_STATE_DIR", str(tmp_path / "state"))
    assert state_dir() == tmp_path / "state"
    db = Database.from_settings(ReidSettings())
    assert db.describe().endswith("reid.sqlite3")
    assert (tmp_path / "state").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "state" / "reid.sqlite3").stat().st_mode & 0o777 == 0o600
    db.close()
    sqlite_url = Database.from_settings(ReidSettings(db=f"sqlite:///{tmp_path}/other.db"))
    assert (tmp_path / "other.db").exists()
    sqlite_url.close()


def test_default_state_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("AUDITVEIL_STATE_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert state_dir() == tmp_path / "auditveil"


def test_bad_database_urls() -> None:
    with pytest.raises(ConfigError):
        Database.from_settings(ReidSettings(db="mysql://x/y"))
    with pytest.raises(SinkError) as err:
        Database("postgresql://auditor:hunter2-secret@127.0.0.1:1/reid")
    assert "hunter2" not in str(err.value) and "auditor" not in str(err.value)


def test_schema_creation_is_idempotent(db_url: str) -> None:
    first = Database(db_url)
    second = Database(db_url)
    with second.transaction() as tx:
        assert tx.one("SELECT seq FROM audit_head WHERE id = 1") == (0,)
    first.close()
    second.close()


def test_failing_hsm_fails_closed_and_keeps_the_use(reid: Reid, vault: Vault, settings: Settings,
                                                    keys: dict[str, Ed25519PrivateKey]) -> None:
    req = reid.file_request(case="INC-5", reason="r", requester="ivan", tokens=list(vault.values))
    for n in ("alice", "bob"):
        req = reid.approve(req.id, n, sig(keys[n], req))
    wrong_pin = dataclasses.replace(settings.pkcs11, custodian_pin=Secret("000000"))
    with pytest.raises(HsmUnavailable):
        reid.reveal(req.id, "ivan", lookup_opener(vault.uri, wrong_pin))
    assert reid.get(req.id).reveals_used == 0
    assert reid.log()[0][-1]["action"] == "reveal_failed"
    assert reid.log()[0][-1]["detail"] == {"error": "HsmUnavailable"}
    # The use was not consumed: the real HSM still reveals once.
    assert reid.reveal(req.id, "ivan", lookup_opener(vault.uri, settings.pkcs11)).values == vault.values
    with pytest.raises(ConfigError):
        lookup_opener("", settings.pkcs11)
