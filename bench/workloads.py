"""Inputs and the HSM for the benchmark: generated logs (cached by parameters) and a SoftHSM2 token."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.runs import REFERENCE


def cloudtrail(workdir: Path, n: int, customers: int = 50_000) -> Path:
    """``n`` CloudTrail KMS events from the reference generator, one per line."""
    path = workdir / f"cloudtrail-{n}-c{customers}.jsonl"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        subprocess.run([sys.executable, str(REFERENCE / "gen_cloudtrail.py"), str(n), str(tmp),
                        "--customers", str(customers)], check=True)
        tmp.rename(path)
    return path


def vault(workdir: Path, n: int) -> Path:
    """``n`` Vault audit-device entries, one per line (see bench/gen_vault.py)."""
    from bench.gen_vault import write_vault

    path = workdir / f"vault-{n}.jsonl"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        write_vault(n, str(tmp))
        tmp.rename(path)
    return path


def tiny(workdir: Path, n: int = 100) -> Path:
    """A few events: a run over them measures start-up and shut-down, not throughput."""
    return cloudtrail(workdir, n)


def hsm_env(workdir: Path) -> dict[str, str]:
    """A private SoftHSM2 token with auditveil's keys; the variables a child process needs."""
    from pipeline.custody.keys import ensure_keys
    from pipeline.custody.softhsm import ensure_token

    token = ensure_token(workdir / "softhsm", label="auditveil-bench")
    ensure_keys(token.settings())
    return token.environ()
