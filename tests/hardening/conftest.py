"""Fixtures for the hardening tests: an in-memory MAC key (unit-level properties only)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.sanitise import Sanitiser, load_policies
from pipeline.tokenise import LocalMacBackend, Tokeniser
from pipeline.tokenise.backends import LOCAL_KEY_OPT_IN


@pytest.fixture(scope="module")
def local_sanitiser() -> Iterator[Sanitiser]:
    """A Sanitiser over the shipped policies with the *test-only* local MAC backend.

    The opt-in variable is set only while the backend is built, then restored, so nothing
    else in the session can pick the insecure backend up by accident.
    """
    old = os.environ.get("AUDITVEIL_INSECURE_LOCAL_KEY")
    os.environ["AUDITVEIL_INSECURE_LOCAL_KEY"] = LOCAL_KEY_OPT_IN
    try:
        backend = LocalMacBackend(b"hardening-property-tests-key-32b!")
    finally:
        if old is None:
            os.environ.pop("AUDITVEIL_INSECURE_LOCAL_KEY", None)
        else:
            os.environ["AUDITVEIL_INSECURE_LOCAL_KEY"] = old
    yield Sanitiser(load_policies(), Tokeniser(backend, cache_size=10_000))


@pytest.fixture(scope="session")
def operator_env(softhsm: object) -> dict[str, str]:
    """A pipeline operator's environment: the pipeline token's PIN file, not the custodians'."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITVEIL_")}
    environ = getattr(softhsm, "pipeline_environ", None) or softhsm.environ  # type: ignore[attr-defined]
    env.update(environ())
    env["AUDITVEIL_PIPELINE_BATCH_SIZE"] = "100"  # many small batches: many points to fail at
    return env


@pytest.fixture(scope="session")
def fault_inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    from tests.hardening.faults import write_fault_inputs

    root = tmp_path_factory.mktemp("fault-inputs")
    return root, write_fault_inputs(root)


@pytest.fixture(scope="session")
def baseline(tmp_path_factory: pytest.TempPathFactory, fault_inputs: tuple[Path, int],
             operator_env: dict[str, str]) -> tuple[Path, list[str]]:
    """An uninterrupted run over the fault inputs: what every interrupted-then-resumed run must equal."""
    from tests.hardening.faults import dataset_rows, run_args, run_cli

    root = tmp_path_factory.mktemp("baseline")
    # One worker: several worker processes on SoftHSM2 race at login (test_hsm_concurrency.py, xfail).
    done = run_cli(operator_env, run_args(fault_inputs[0], root / "out", root / "lookup", "--workers", "1"))
    assert done.returncode == 0, done.stderr[-3000:]
    rows = dataset_rows(root / "out")
    assert len(rows) == fault_inputs[1]
    return root, rows
