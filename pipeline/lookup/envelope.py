"""The lookup-vault envelope: AES-256-GCM under a per-batch DEK, DEK wrapped for the custodians.

A worker holds only the custodians' RSA *public* key, so it can seal but never open:

* ``Sealer`` makes one random 256-bit DEK, wraps it with RSA-OAEP (hash per settings, recorded
  in the wrapped-DEK record), and seals each value with AES-256-GCM, a random 96-bit nonce,
  and the token (or dead-letter id) as associated data, so a ciphertext cannot be moved to
  another token.
* ``open_sealed`` is used by the re-identification service after the HSM has unwrapped the
  DEK; the pipeline never calls it.

Wrapped DEK record format ``auditveil-dek/v1`` (JSON, one file per DEK under ``deks/``)::

    {"format": "auditveil-dek/v1", "dek_id": "<32 hex>", "wrapped_dek": "<base64>",
     "oaep_hash": "sha1"|"sha256", "custodian_key": "<sha256 hex of the public key DER>",
     "created_at": "<ISO-8601 UTC>"}

Destroying that file destroys every entry sealed under it (crypto-shredding).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import uuid
from dataclasses import dataclass

import orjson
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pipeline.errors import ConfigError

DEK_FORMAT = "auditveil-dek/v1"
MIN_RSA_BITS = 3072


@dataclass(frozen=True)
class WrappedDek:
    dek_id: str
    wrapped_dek: bytes
    oaep_hash: str
    custodian_key: str
    created_at: str

    def to_json(self) -> bytes:
        return orjson.dumps({
            "format": DEK_FORMAT, "dek_id": self.dek_id,
            "wrapped_dek": base64.b64encode(self.wrapped_dek).decode("ascii"),
            "oaep_hash": self.oaep_hash, "custodian_key": self.custodian_key, "created_at": self.created_at,
        })

    @classmethod
    def from_json(cls, data: bytes) -> WrappedDek:
        d = orjson.loads(data)
        if d.get("format") != DEK_FORMAT:
            raise ValueError("not an auditveil wrapped DEK record")
        return cls(d["dek_id"], base64.b64decode(d["wrapped_dek"]), d["oaep_hash"], d["custodian_key"],
                   d["created_at"])


def _oaep(hash_name: str) -> padding.OAEP:
    algo: hashes.HashAlgorithm = hashes.SHA1() if hash_name == "sha1" else hashes.SHA256()  # noqa: S303
    return padding.OAEP(mgf=padding.MGF1(algorithm=algo), algorithm=algo, label=None)


def load_custodian_public_key(der: bytes) -> rsa.RSAPublicKey:
    key = serialization.load_der_public_key(der)
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < MIN_RSA_BITS:
        raise ConfigError(f"the custodians' key must be RSA with at least {MIN_RSA_BITS} bits")
    return key


def key_fingerprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


class Sealer:
    """Seals values under one fresh DEK. Make a new one per bundle/batch/window."""

    def __init__(self, public_key_der: bytes, oaep_hash: str) -> None:
        pub = load_custodian_public_key(public_key_der)
        self._dek = AESGCM.generate_key(bit_length=256)
        self._aead = AESGCM(self._dek)
        self.wrapped = WrappedDek(
            dek_id=uuid.uuid4().hex,
            wrapped_dek=pub.encrypt(self._dek, _oaep(oaep_hash)),
            oaep_hash=oaep_hash,
            custodian_key=key_fingerprint(public_key_der),
            created_at=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )

    @property
    def dek_id(self) -> str:
        return self.wrapped.dek_id

    def seal(self, plaintext: bytes, associated: str) -> tuple[bytes, bytes]:
        """Return (nonce, ciphertext‖tag) for ``plaintext`` bound to ``associated``."""
        nonce = os.urandom(12)
        return nonce, self._aead.encrypt(nonce, plaintext, associated.encode("utf-8"))

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("a data key cannot be pickled")


def open_sealed(dek: bytes, nonce: bytes, ciphertext: bytes, associated: str) -> bytes:
    """Decrypt one sealed value with an unwrapped DEK (re-identification service only)."""
    return AESGCM(dek).decrypt(nonce, ciphertext, associated.encode("utf-8"))
