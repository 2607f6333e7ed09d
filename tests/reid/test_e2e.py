"""End to end: ``auditveil run`` pseudonymises a CloudTrail file, then the CLI workflow reveals it.

The tokens are taken from the analysts' Parquet output, the custodians' keys are made with
OpenSSL, and the reveal must give back exactly the identifiers of the input file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest

from pipeline.tokenise.token_format import TOKEN_RE
from tests.reid.conftest import CliRunner

ROOT = Path(__file__).resolve().parents[2]
IDENTIFIERS = {
    "arn:aws:iam::111122223333:user/alice.martin": "prn.",
    "AKIAIOSFODNN7EXAMPLE": "akid.",
    "203.0.113.77": "ip.",
    "eu-user-8847261": "ctx.",
}
EVENT: dict[str, Any] = {
    "eventVersion": "1.08",
    "userIdentity": {"type": "IAMUser", "principalId": "AIDAJQABLZS4A3QDU576Q",
                     "arn": "arn:aws:iam::111122223333:user/alice.martin", "accountId": "111122223333",
                     "accessKeyId": "AKIAIOSFODNN7EXAMPLE", "userName": "alice.martin"},
    "eventTime": "2026-11-20T10:00:00Z", "eventSource": "kms.amazonaws.com", "eventName": "Decrypt",
    "awsRegion": "eu-west-1", "sourceIPAddress": "203.0.113.77", "userAgent": "aws-cli/2.15.0",
    "requestParameters": {
        "encryptionContext": {"customer_id": "eu-user-8847261", "resource_type": "health_record"},
        "encryptionAlgorithm": "SYMMETRIC_DEFAULT"},
    "responseElements": None, "requestID": "11111111-2222-3333-4444-555555555555",
    "eventID": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", "readOnly": True,
    "resources": [{"accountId": "111122223333", "type": "AWS::KMS::Key",
                   "ARN": "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"}],
    "eventType": "AwsApiCall", "managementEvent": True, "recipientAccountId": "111122223333",
}

# The real entry point, minus command modules whose package is not in this checkout yet.
LAUNCHER = (
    "import importlib.util, sys, pipeline.cli as c; "
    "c.COMMAND_MODULES = tuple(m for m in c.COMMAND_MODULES "
    "if importlib.util.find_spec(m.rsplit('.', 1)[0]) is not None); sys.exit(c.main())"
)


def _strings(obj: Any) -> list[str]:
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [s for v in obj.values() for s in _strings(v)]
    if isinstance(obj, list | tuple):  # map columns come back as lists of (key, value) tuples
        return [s for v in obj for s in _strings(v)]
    return []


def _tokens_in_output(out: Path) -> set[str]:
    tokens: set[str] = set()
    for f in out.rglob("*.parquet"):
        for row in pq.read_table(f).to_pylist():
            for s in _strings(row):
                tokens.update(m.group(0) for m in TOKEN_RE.finditer(s))
    return tokens


def _openssl_keypair(d: Path, name: str) -> tuple[Path, Path]:
    key, pub = d / f"{name}.key.pem", d / f"{name}.pub.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(key)], check=True)
    subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-out", str(pub)], check=True)
    key.chmod(0o600)
    return key, pub


@pytest.mark.e2e
@pytest.mark.hsm
def test_run_then_reveal_gives_back_the_input_identifiers(tmp_path: Path, cli_env: dict[str, str],
                                                          run_cli: CliRunner) -> None:
    src = tmp_path / "in" / "trail.json"
    src.parent.mkdir()
    src.write_bytes(orjson.dumps({"Records": [EVENT]}))
    out, lookup = tmp_path / "out", tmp_path / "lookup"
    env = {**cli_env, "PYTHONPATH": str(ROOT), "AUDITVEIL_STATE_DIR": str(tmp_path / "state")}
    done = subprocess.run([sys.executable, "-c", LAUNCHER, "run", "--input", str(src), "--out", str(out),
                           "--lookup", str(lookup), "--no-progress", "--workers", "1"],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    tokens = _tokens_in_output(out)
    assert len(tokens) >= len(IDENTIFIERS)
    parquet_text = b"".join(f.read_bytes() for f in out.rglob("*.parquet"))
    for ident in IDENTIFIERS:
        assert ident.encode() not in parquet_text

    keys = {n: _openssl_keypair(tmp_path, n) for n in ("alice", "bob")}
    for n, (_, pub) in keys.items():
        code, text, err = run_cli("reid", "custodian", "add", n, "--public-key", str(pub))
        assert code == 0, err
        assert "sha256:" in text
    code, text, err = run_cli("reid", "request", "--case", "INC-2026-0042", "--requester", "ivan",
                              "--reason", "suspected key misuse; GDPR Art. 6(1)(f)", *sorted(tokens))
    assert code == 0, err
    rid = text.strip()
    assert rid.startswith("req-")

    assert run_cli("reid", "reveal", rid, "--requester", "ivan", "--lookup", str(lookup))[0] == 6
    for n, (key, _) in keys.items():
        code, text, err = run_cli("reid", "approve", rid, "--custodian", n, "--signing-key", str(key))
        assert code == 0, err
    assert "approved" in run_cli("reid", "list")[1]
    assert run_cli("reid", "reveal", rid, "--requester", "alice", "--lookup", str(lookup))[0] == 6

    code, text, err = run_cli("reid", "reveal", rid, "--requester", "ivan", "--lookup", str(lookup))
    assert code == 0, err
    revealed = orjson.loads(text)
    assert set(revealed) == tokens, err
    by_value = {v: t for t, v in revealed.items()}
    for ident, prefix in IDENTIFIERS.items():
        assert ident in by_value and by_value[ident].startswith(prefix)
    source_strings = set(_strings(EVENT))
    assert all(v in source_strings for v in revealed.values())

    code, text, _ = run_cli("reid", "log", "--verify")
    assert code == 0 and text.startswith("audit log OK")
    code, exported, _ = run_cli("reid", "log")
    assert all(ident not in exported for ident in IDENTIFIERS)
    log_file = tmp_path / "audit.jsonl"
    log_file.write_text(exported, encoding="utf-8")
    assert run_cli("reid", "log", "--file", str(log_file))[0] == 0
    data = bytearray(log_file.read_bytes())
    data[len(data) // 2] ^= 0x01
    log_file.write_bytes(bytes(data))
    code, text, _ = run_cli("reid", "log", "--file", str(log_file))
    assert code == 1 and "BROKEN" in text


@pytest.mark.e2e
def test_cli_entry_point_in_a_subprocess(tmp_path: Path) -> None:
    """The module entry point itself (not only main()): a request and a refusal exit code."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITVEIL_")}
    env.update(PYTHONPATH=str(ROOT), AUDITVEIL_STATE_DIR=str(tmp_path / "state"))
    run = [sys.executable, "-c", LAUNCHER]
    done = subprocess.run([*run, "reid", "request", "--case", "C-1", "--reason", "r", "--requester", "ivan",
                           "ip.k1.aaaaaaaaaaaaaaaaaaaaaaaaaa"],
                          env=env, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.startswith("req-"), done.stderr
    rid = done.stdout.strip()
    done = subprocess.run([*run, "reid", "reveal", rid, "--requester", "ivan", "--lookup", str(tmp_path)],
                          env=env, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 6 and "valid approval(s)" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.e2e
def test_serve_over_tls_from_the_cli(tmp_path: Path, cli_env: dict[str, str]) -> None:
    """`auditveil serve` as a user starts it: HTTPS on loopback, API key from `reid apikey add`."""
    import socket
    import ssl
    import time

    import httpx

    env = {**cli_env, "PYTHONPATH": str(ROOT), "AUDITVEIL_STATE_DIR": str(tmp_path / "state")}
    run = [sys.executable, "-c", LAUNCHER]
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    done = subprocess.run([*run, "reid", "apikey", "add", "ivan", "--role", "investigator"],
                          env=env, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    api_key = done.stdout.strip()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([*run, "serve", "--port", str(port), "--lookup", str(tmp_path / "lookup"),
                               "--tls-cert", str(cert), "--tls-key", str(key)],
                              env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    try:
        trust = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=trust, timeout=5) as c:
            deadline = time.monotonic() + 30
            while True:
                try:
                    assert c.get("/healthz").status_code == 200
                    break
                except httpx.TransportError:
                    assert server.poll() is None, server.stderr.read() if server.stderr else ""
                    assert time.monotonic() < deadline, "the service did not start"
                    time.sleep(0.2)
            assert c.get("/v1/whoami").status_code == 401
            who = c.get("/v1/whoami", headers={"Authorization": f"Bearer {api_key}"})
            assert who.json() == {"identity": "ivan", "role": "investigator"}
    finally:
        server.terminate()
        server.wait(timeout=20)
