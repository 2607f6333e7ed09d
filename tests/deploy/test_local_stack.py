"""deploy/local/stack: the whole stack comes up on loopback, a re-identification succeeds with
two custodian approvals, and `down` leaves nothing running."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "deploy" / "local" / "stack"


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture()
def stack_env() -> Iterator[dict[str, str]]:
    # Not under pytest's tmp_path: PostgreSQL's own account must be able to reach its data
    # directory, and pytest's base directory is private to root.
    state = Path(tempfile.mkdtemp(prefix="auditveil-stack-test-", dir="/tmp"))
    state.chmod(0o711)  # traverse only
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUDITVEIL_", "AWS_", "PG"))}
    env.update(AUDITVEIL_STACK_DIR=str(state / "stack"), AUDITVEIL_STACK_SKIP_SETUP="1")
    yield env
    subprocess.run([str(STACK), "down", "--purge"], env=env, capture_output=True, timeout=180)
    shutil.rmtree(state, ignore_errors=True)


@pytest.mark.e2e
@pytest.mark.slow
def test_stack_up_demo_down(stack_env: dict[str, str]) -> None:
    up = subprocess.run([str(STACK), "up"], env=stack_env, capture_output=True, text=True, timeout=400)
    assert up.returncode == 0, up.stderr[-3000:]
    state = json.loads((Path(stack_env["AUDITVEIL_STACK_DIR"]) / "state.json").read_text())
    services = state["services"]
    assert set(services) == {"kafka", "s3", "postgres", "stream", "reid"}
    for name, svc in services.items():
        assert _alive(int(svc["pid"])), f"{name} is not running after up"
    for svc in services.values():
        if "port" in svc:
            assert _listening(int(svc["port"]))
    secrets_dir = Path(stack_env["AUDITVEIL_STACK_DIR"]) / "secrets"
    for f in secrets_dir.iterdir():
        assert f.stat().st_mode & 0o077 == 0, f"{f.name} is readable by group or others"

    again = subprocess.run([str(STACK), "up"], env=stack_env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "already running" in again.stderr

    demo = subprocess.run(
        [str(STACK), "demo", "--events", "80", "--timeout", "240"],
        env=stack_env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert demo.returncode == 0, (demo.stdout + demo.stderr)[-3000:]
    assert "after approvals by alice and bob" in demo.stdout
    assert "audit log verified" in demo.stdout
    status = subprocess.run([str(STACK), "status"], env=stack_env, capture_output=True, text=True, timeout=60)
    assert status.returncode == 0, status.stdout

    down = subprocess.run([str(STACK), "down"], env=stack_env, capture_output=True, text=True, timeout=180)
    assert down.returncode == 0, down.stderr
    for name, svc in services.items():
        assert not _alive(int(svc["pid"])), f"{name} still runs after down"
        if "port" in svc:
            assert not _listening(int(svc["port"])), f"{name}'s port is still open after down"
    after = subprocess.run([str(STACK), "status"], env=stack_env, capture_output=True, text=True, timeout=60)
    assert after.returncode == 1 and "not running" in after.stdout
