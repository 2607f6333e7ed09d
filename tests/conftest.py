"""Shared fixtures: a real SoftHSM2 token with auditveil's keys, and the service plugins.

Every module in ``tests/services/`` is loaded as a pytest plugin; each starts one real
component (Kafka-compatible broker, S3-compatible server, PostgreSQL) on loopback when a test
asks for its fixture, and stops it at the end of the session.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.config import Pkcs11Settings, Settings, with_overrides
from pipeline.custody.keys import ensure_keys
from pipeline.custody.softhsm import SoftHsmToken, ensure_token

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
FIXTURES = SHARED / "fixtures" / "cloudtrail-structure"
if not FIXTURES.exists():  # a copy may sit in the repo
    FIXTURES = ROOT / "tests" / "data" / "cloudtrail-structure"

pytest_plugins = sorted(
    f"tests.services.{p.stem}" for p in (Path(__file__).parent / "services").glob("*.py")
    if p.stem != "__init__"
)


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsmToken]:
    """A fresh SoftHSM2 token for this test session, with auditveil's keys created."""
    home = tmp_path_factory.mktemp("softhsm")
    old = os.environ.get("SOFTHSM2_CONF")
    token = ensure_token(home, label="auditveil-test")
    ensure_keys(token.settings())
    yield token
    if old is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = old


@pytest.fixture(scope="session")
def hsm_settings(softhsm: SoftHsmToken) -> Pkcs11Settings:
    return softhsm.settings()


@pytest.fixture(scope="session")
def settings(hsm_settings: Pkcs11Settings) -> Settings:
    return with_overrides(Settings(), "pkcs11", **{
        k: getattr(hsm_settings, k)
        for k in ("module", "token_label", "pin", "custodian_token_label", "custodian_pin")
    })


@pytest.fixture()
def cli_env(softhsm: SoftHsmToken) -> dict[str, str]:
    """Environment for running the ``auditveil`` CLI in a subprocess against the test tokens
    (both PINs: for key set-up and re-identification)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITVEIL_")}
    env.update(softhsm.environ())
    return env


@pytest.fixture()
def pipeline_env(softhsm: SoftHsmToken) -> dict[str, str]:
    """Environment of a pipeline operator: the pipeline token's PIN only, never the custodians'."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITVEIL_")}
    env.update(softhsm.pipeline_environ())
    return env


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not FIXTURES.exists():
        pytest.fail("the shared CloudTrail fixtures are missing")
    return FIXTURES
