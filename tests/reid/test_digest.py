"""Known-answer vectors for the bytes custodians sign (FROZEN: version 1 never changes)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pipeline.errors import ConfigError
from pipeline.reid import signing
from pipeline.reid.digest import RequestFacts, canonical_request, decision_message, request_digest

FACTS = RequestFacts(
    id="req-0123456789abcdef", case="INC-2026-0042", reason="suspected key misuse; GDPR Art. 6(1)(f)",
    requester="ivan",
    tokens=("prn.k1.bbbbbbbbbbbbbbbbbbbbbbbbbb", "ip.k1.aaaaaaaaaaaaaaaaaaaaaaaaaa",
            "prn.k1.bbbbbbbbbbbbbbbbbbbbbbbbbb"),
    created_at="2026-11-29T03:00:00.000000Z", expires_at="2026-12-02T03:00:00.000000Z",
)
DOCUMENT = (
    b'{"case":"INC-2026-0042","created_at":"2026-11-29T03:00:00.000000Z",'
    b'"expires_at":"2026-12-02T03:00:00.000000Z","format":"auditveil-reid-request/v1",'
    b'"id":"req-0123456789abcdef","reason":"suspected key misuse; GDPR Art. 6(1)(f)","requester":"ivan",'
    b'"tokens":["ip.k1.aaaaaaaaaaaaaaaaaaaaaaaaaa","prn.k1.bbbbbbbbbbbbbbbbbbbbbbbbbb"]}'
)
DIGEST = "db7f0c41f88c834108e3d6e468b6470783326c42baba6f4b9ae10e6095b3cb63"


def test_canonical_request_vector() -> None:
    assert canonical_request(FACTS) == DOCUMENT
    assert hashlib.sha256(DOCUMENT).hexdigest() == DIGEST
    assert request_digest(FACTS) == DIGEST


def test_nfc_and_utf8_vector() -> None:
    decomposed = RequestFacts(**{**FACTS.__dict__, "reason": "Zoe\u0308",
                                 "tokens": ("ip.k1.aaaaaaaaaaaaaaaaaaaaaaaaaa",)})
    composed = RequestFacts(**{**decomposed.__dict__, "reason": "Zo\u00eb"})
    assert b'"reason":"Zo\xc3\xab"' in canonical_request(decomposed)
    assert request_digest(decomposed) == request_digest(composed) == (
        "630a7eff57465c226863721a1adaf455edf0dc83fa68ff2d774a2734fc95bc3a")


@pytest.mark.parametrize("field", ["id", "case", "reason", "requester", "created_at", "expires_at"])
def test_every_field_is_covered(field: str) -> None:
    changed = RequestFacts(**{**FACTS.__dict__, field: getattr(FACTS, field) + "x"})
    assert request_digest(changed) != DIGEST


def test_tokens_are_covered() -> None:
    more = RequestFacts(**{**FACTS.__dict__, "tokens": (*FACTS.tokens, "ip.k1.cccccccccccccccccccccccccc")})
    assert request_digest(more) != DIGEST


def test_decision_messages() -> None:
    assert decision_message(DIGEST, "approve") == f"auditveil-reid/v1:approve:{DIGEST}".encode()
    assert decision_message(DIGEST, "deny") == f"auditveil-reid/v1:deny:{DIGEST}".encode()
    with pytest.raises(ValueError):
        decision_message(DIGEST, "maybe")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_openssl_keys_and_signatures_interoperate(tmp_path: Path) -> None:
    """Custodians may use plain OpenSSL: its keys load, and it verifies our signatures."""
    key, pub = tmp_path / "k.pem", tmp_path / "k.pub.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(key)], check=True)
    subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-out", str(pub)], check=True)
    key.chmod(0o600)
    private = signing.read_signing_key_file(str(key))
    public = signing.read_public_key_file(str(pub))
    message = decision_message(DIGEST, "approve")
    sig_b64 = signing.sign(private, message)
    assert signing.verify(public, message, sig_b64)
    (tmp_path / "msg").write_bytes(message)
    (tmp_path / "sig").write_bytes(signing.decode_signature(sig_b64))
    done = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(pub), "-rawin",
                           "-in", str(tmp_path / "msg"), "-sigfile", str(tmp_path / "sig")],
                          capture_output=True, text=True)
    assert done.returncode == 0 and "Signature Verified Successfully" in done.stdout
    # And OpenSSL's own signature verifies with us.
    subprocess.run(["openssl", "pkeyutl", "-sign", "-inkey", str(key), "-rawin", "-in", str(tmp_path / "msg"),
                    "-out", str(tmp_path / "sig2")], check=True)
    import base64

    assert signing.verify(public, message, base64.b64encode((tmp_path / "sig2").read_bytes()).decode())


def test_signing_key_file_rules(tmp_path: Path) -> None:
    priv, pub = tmp_path / "c.key.pem", tmp_path / "c.pub.pem"
    signing.generate(priv, pub)
    assert priv.stat().st_mode & 0o777 == 0o600
    priv.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        signing.read_signing_key_file(str(priv))
    with pytest.raises(ConfigError, match="already exists"):
        signing.generate(priv, pub)
    with pytest.raises(ConfigError):
        signing.read_signing_key_file(str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigError, match="not a PEM"):
        signing.load_public_key_pem(b"garbage")
    assert signing.verify(Ed25519PrivateKey.generate().public_key(), b"m", "AAAA") is False
