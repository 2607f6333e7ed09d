"""Helpers for the fault tests: inputs with many distinct identifiers, CLI runs, output checks."""

from __future__ import annotations

import gzip
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[2]


def write_fault_inputs(root: Path, files: int = 12, events: int = 200, seed: int = 7) -> int:
    """CloudTrail export files and Vault logs where every event carries new identifiers, so the
    HSM is called all through the run (the per-worker cache cannot absorb them). Returns the
    number of events."""
    rnd = random.Random(seed)
    total = 0
    for f in range(files):
        recs = []
        for e in range(events):
            n = f * events + e
            recs.append({
                "eventVersion": "1.08", "eventTime": f"2026-11-{27 + n % 2}T{n % 24:02d}:{n % 60:02d}:00Z",
                "eventSource": "kms.amazonaws.com", "eventName": rnd.choice(("Decrypt", "Encrypt", "GenerateDataKey")),
                "awsRegion": "eu-central-1", "eventID": f"{n:08x}-0000-4000-8000-{rnd.getrandbits(48):012x}",
                "sourceIPAddress": f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}",
                "userIdentity": {"type": "IAMUser", "arn": f"arn:aws:iam::111122223333:user/fault{n}@example.eu",
                                 "accountId": "111122223333", "accessKeyId": f"AKIA{n:016d}",
                                 "userName": f"fault{n}@example.eu", "principalId": f"AIDA{n:016d}"},
                "requestParameters": {"encryptionContext": {"customer_id": f"eu-user-{n}"},
                                      "keyId": "arn:aws:kms:eu-central-1:111122223333:key/"
                                               "1234abcd-12ab-34cd-56ef-1234567890ab"},
                "readOnly": True, "eventType": "AwsApiCall", "recipientAccountId": "111122223333",
            })
        path = root / "AWSLogs" / "111122223333" / "CloudTrail" / "eu-central-1" / "2026" / "11" / "27"
        path.mkdir(parents=True, exist_ok=True)
        (path / f"111122223333_CloudTrail_eu-central-1_20261127T{f:04d}Z_x.json.gz").write_bytes(
            gzip.compress(orjson.dumps({"Records": recs}), compresslevel=1))
        total += len(recs)
    vault = root / "vault"
    vault.mkdir(exist_ok=True)
    lines = []
    for n in range(events * 2):
        lines.append(orjson.dumps({
            "time": f"2026-11-27T10:{n % 60:02d}:00.123456789Z", "type": "request",
            "auth": {"display_name": f"oidc-v{n}@example.eu", "entity_id": f"ent-{n}", "token_type": "service",
                     "metadata": {"email": f"v{n}@example.eu", "role": "app"}},
            "request": {"id": f"{n:08x}-1111-4000-8000-000000000000", "operation": "update",
                        "mount_type": "transit", "path": "transit/encrypt/orders",
                        "remote_address": f"10.9.{n >> 8 & 255}.{n & 255}",
                        "data": {"context": f"ctx-{n}"}},
        }))
    (vault / "audit.log").write_bytes(b"\n".join(lines) + b"\n")
    return total + len(lines)


def run_args(inputs: Path, out: Path, lookup: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pipeline.cli", "run", "--input", str(inputs), "--out", str(out),
            "--lookup", str(lookup), "--no-progress", *extra]


def run_cli(env: dict[str, str], args: list[str], timeout: int = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)


class Running:
    """A CLI process in its own process group (so its Beam worker processes can be killed too)."""

    def __init__(self, env: dict[str, str], args: list[str], log: Path) -> None:
        self.log = log
        self._fh = open(log, "wb")
        self.proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=self._fh, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def kill(self) -> None:
        """SIGKILL the CLI and every process it started (its own process group, by id)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=60)
        self._fh.close()

    def wait(self, timeout: float = 600) -> int:
        try:
            code = self.proc.wait(timeout=timeout)
        finally:
            self._fh.close()
        _reap_group(self.proc.pid)
        return code

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _reap_group(pgid: int) -> None:
    """Make sure no worker of a finished run is left behind (our own process group only)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def wait_for(cond: Any, timeout: float, what: str, poll: float = 0.02) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(poll)
    raise AssertionError(f"timed out waiting for {what}")


def visible_files(root: Path) -> list[Path]:
    """Files a reader of the dataset sees: no path component starting with '.' or '_'."""
    if not root.exists():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file()
                  and not any(part.startswith((".", "_")) for part in p.relative_to(root).parts))


def event_files(out: Path) -> list[Path]:
    return [p for p in visible_files(out) if p.suffix == ".parquet"]


def dataset_rows(out: Path) -> list[str]:
    """Every event row as canonical JSON (with its partition), sorted: equal lists = equal output."""
    rows: list[str] = []
    for p in event_files(out):
        parts = dict(part.split("=", 1) for part in p.relative_to(out).parts[:-1])
        for row in pq.read_table(p).to_pylist():
            row.update(parts)
            rows.append(orjson.dumps(row, option=orjson.OPT_SORT_KEYS, default=str).decode())
    return sorted(rows)


def lookup_tokens(lookup: Path) -> set[str]:
    return {t for p in (lookup / "entries").glob("*.parquet") for t in pq.read_table(p, columns=["token"])
            .column("token").to_pylist()} if (lookup / "entries").exists() else set()


def event_tokens(out: Path) -> set[str]:
    from pipeline.tokenise.token_format import TOKEN_RE

    found: set[str] = set()
    for row in dataset_rows(out):
        found.update(m.group(0) for m in TOKEN_RE.finditer(row))
    return found


def assert_visible_output_consistent(out: Path, lookup: Path) -> None:
    """What a stopped run left visible is complete, and every token in it has its sealed lookup
    entry: no token reaches analysts before its entry is durable."""
    for p in event_files(out):
        pq.read_table(p)  # a visible file is always complete
    assert event_tokens(out) <= lookup_tokens(lookup)
