"""Fixtures for the re-identification tests: real custodian keys, a real lookup vault, both databases.

``vault`` seals values with tokens minted by the real SoftHSM2 token (Tokeniser +
HsmMacBackend) and lookup entries written by ``pipeline.lookup.store.write_entries`` under a
DEK wrapped with the HSM's custodian public key, exactly as the pipeline does.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pipeline.config import Settings
from pipeline.custody.softhsm import SoftHsmToken
from pipeline.reid.db import Database
from pipeline.reid.reveal import lookup_opener
from pipeline.reid.workflow import Opener, Reid
from tests.reid.helpers import Vault, build_vault, cli_modules_available, pub_pem

CliRunner = Callable[..., tuple[int, str, str]]

@pytest.fixture(scope="session")
def vault(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Vault:
    """A lookup vault shared by tests that only read it."""
    return build_vault(tmp_path_factory.mktemp("lookup"), settings)


@pytest.fixture()
def fresh_vault(settings: Settings, tmp_path: Path) -> Vault:
    """A lookup vault of this test's own (for purge and forget)."""
    return build_vault(tmp_path / "lookup", settings)


@pytest.fixture(scope="session")
def keys() -> dict[str, Ed25519PrivateKey]:
    return {name: Ed25519PrivateKey.generate() for name in ("alice", "bob", "carol", "ivan", "mallory")}


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "state" / "reid.sqlite3")
    return str(request.getfixturevalue("postgres_dsn"))


@pytest.fixture()
def reid(db_url: str, settings: Settings, keys: dict[str, Ed25519PrivateKey]) -> Iterator[Reid]:
    """A workflow on a fresh database with alice, bob, carol (and ivan, who also investigates) enrolled."""
    db = Database(db_url)
    r = Reid(db, settings.reid)
    for name in ("alice", "bob", "carol", "ivan"):
        r.enrol_custodian(name, pub_pem(keys[name]), actor="test-admin")
    yield r
    db.close()


@pytest.fixture()
def opener(vault: Vault, settings: Settings) -> Opener:
    return lookup_opener(vault.uri, settings.pkcs11)


@pytest.fixture()
def run_cli(softhsm: SoftHsmToken, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
            capsys: pytest.CaptureFixture[str]) -> CliRunner:
    """Run ``auditveil ARGS`` in-process with the test token and a private state directory."""
    import pipeline.cli as cli

    for k in list(os.environ):
        if k.startswith("AUDITVEIL_"):
            monkeypatch.delenv(k)
    for k, v in softhsm.environ().items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("AUDITVEIL_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setattr(cli, "COMMAND_MODULES", cli_modules_available())

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = cli.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run
