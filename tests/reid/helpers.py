"""Helpers shared by the re-identification and lookup tests (not fixtures)."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pipeline.config import Settings, with_overrides
from pipeline.custody.hsm import read_custodian_public_key
from pipeline.lookup.envelope import Sealer
from pipeline.lookup.store import write_entries
from pipeline.reid import signing
from pipeline.reid.digest import decision_message
from pipeline.reid.workflow import Request
from pipeline.storage.fs import resolve
from pipeline.tokenise import HsmMacBackend, Tokeniser

# Identifiers as they appear in KMS/Vault audit logs, including non-ASCII and NFC-sensitive ones.
VALUES = [
    ("prn", "", "arn:aws:iam::111122223333:user/alice.martin"),
    ("ip", "", "203.0.113.77"),
    ("akid", "", "AKIAIOSFODNN7EXAMPLE"),
    ("ctx", "customer_id", "eu-user-8847261"),
    ("usr", "", "Zoë Ångström"),
    ("meta", "email", "jürgen.müller@example.eu"),
]


@dataclass(frozen=True)
class Vault:
    uri: str
    values: dict[str, str]  # token -> original value

    def token_of(self, value: str) -> str:
        return next(t for t, v in self.values.items() if v == value)


def build_vault(path: Path, settings: Settings, values: list[tuple[str, str, str]] = VALUES,
                batches: int = 2) -> Vault:
    """Tokenise ``values`` with the HSM and seal their lookup entries, in ``batches`` DEKs."""
    loc = resolve(str(path))
    public_der = read_custodian_public_key(settings.pkcs11)
    tok = Tokeniser(HsmMacBackend(settings.pkcs11), cache_size=1000)
    mapping: dict[str, str] = {}
    try:
        for b in range(batches):
            for domain, sub, value in values[b::batches]:
                mapping[tok.tokenise(domain, value, sub)] = value
            sealer = Sealer(public_der, settings.pkcs11.oaep_hash)
            write_entries(loc, sealer, tok.drain(), batch_id=f"test-{b}")
    finally:
        tok.close()
    return Vault(str(path), mapping)


def pub_pem(key: Ed25519PrivateKey) -> bytes:
    return signing.public_key_pem(key.public_key()).encode("ascii")


def sig(key: Ed25519PrivateKey, req: Request, decision: str = "approve") -> str:
    return signing.sign(key, decision_message(req.digest, decision))


def reid_settings(settings: Settings, **changes: object) -> Settings:
    return with_overrides(settings, "reid", **changes)


def cli_modules_available() -> tuple[str, ...]:
    """COMMAND_MODULES whose package exists in this checkout (others are still being written)."""
    import pipeline.cli as cli

    return tuple(m for m in cli.COMMAND_MODULES if importlib.util.find_spec(m.rsplit(".", 1)[0]) is not None)


