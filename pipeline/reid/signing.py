"""Custodians' Ed25519 keys: load PEM files, sign decision messages, verify signatures.

Private keys are PKCS#8 PEM files that only their owner may read (``chmod 600``); an
encrypted PEM is opened with the passphrase in ``$AUDITVEIL_SIGNING_KEY_PASSPHRASE``. Public
keys are SubjectPublicKeyInfo PEM (``openssl pkey -pubout``). Signatures travel as base64.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from pipeline.config import write_secret_file
from pipeline.errors import ConfigError, ReidRefused

PASSPHRASE_ENV = "AUDITVEIL_SIGNING_KEY_PASSPHRASE"  # noqa: S105 - a variable name


def load_public_key_pem(pem: bytes) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError):
        raise ConfigError("the custodian public key is not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError("the custodian public key must be an Ed25519 key")
    return key


def public_key_pem(key: Ed25519PublicKey) -> str:
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem.decode("ascii")


def fingerprint(key: Ed25519PublicKey) -> str:
    """SHA-256 of the raw 32-byte public key, hex: how custodians compare keys out of band."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def read_public_key_file(path: str) -> Ed25519PublicKey:
    try:
        pem = Path(path).read_bytes()
    except OSError:
        raise ConfigError("the public key file does not exist or cannot be read") from None
    return load_public_key_pem(pem)


def read_signing_key_file(path: str) -> Ed25519PrivateKey:
    """Load a custodian's private key from an owner-only PKCS#8 PEM file."""
    p = Path(path)
    try:
        st = p.stat()
        pem = p.read_bytes()
    except OSError:
        raise ConfigError("the signing key file does not exist or cannot be read") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError("the signing key file is readable by group or others; run chmod 600 on it")
    passphrase = os.environ.get(PASSPHRASE_ENV)
    try:
        key = serialization.load_pem_private_key(pem, password=passphrase.encode() if passphrase else None)
    except TypeError:
        raise ConfigError(f"the signing key is encrypted; set {PASSPHRASE_ENV}") from None
    except ValueError:
        raise ConfigError("the signing key file is not a readable PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError("the signing key must be an Ed25519 key")
    return key


def sign(key: Ed25519PrivateKey, message: bytes) -> str:
    return base64.b64encode(key.sign(message)).decode("ascii")


def decode_signature(signature_b64: str) -> bytes:
    try:
        sig = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        raise ReidRefused("the signature is not valid base64") from None
    if len(sig) != 64:
        raise ReidRefused("the signature is not an Ed25519 signature (64 bytes)")
    return sig


def verify(key: Ed25519PublicKey, message: bytes, signature_b64: str) -> bool:
    try:
        key.verify(decode_signature(signature_b64), message)
    except (InvalidSignature, ReidRefused):
        return False
    return True


def generate(private_path: Path, public_path: Path) -> str:
    """Write a new key pair (private file 0600); return the public key's fingerprint."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    write_secret_file(private_path, pem, "private key")
    public_path.write_text(public_key_pem(key.public_key()), encoding="ascii")
    return fingerprint(key.public_key())
