"""Bearer API keys for the HTTP service: each bound to one identity and one role.

A key is ``avk_<key id>_<secret>``: the key id (16 hex) names the row, the secret (256 random
bits, base64url) is never stored — only its SHA-256, compared in constant time. A fast hash is
right here because the secret is random, not a password. Keys are shown once, at creation.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from pipeline.errors import ConfigError
from pipeline.reid import auditlog
from pipeline.reid.auditlog import fmt_time, utc_now
from pipeline.reid.db import Database
from pipeline.reid.workflow import check_name

ROLES = ("investigator", "custodian")
PREFIX = "avk_"


@dataclass(frozen=True)
class Caller:
    identity: str
    role: str
    key_id: str


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def add_key(db: Database, identity: str, role: str, actor: str) -> tuple[str, str]:
    """Create a key; returns (key id, full key). The full key is not stored and cannot be shown again."""
    check_name(identity, "identity")
    if role not in ROLES:
        raise ConfigError("the role must be investigator or custodian")
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    with db.transaction() as tx:
        tx.execute("INSERT INTO api_keys (key_id, secret_hash, identity, role, created_at, revoked_at) "
                   "VALUES (?, ?, ?, ?, ?, NULL)",
                   (key_id, _hash(secret), identity, role, fmt_time(utc_now())))
        auditlog.append(tx, actor=actor, action="apikey_added",
                        detail={"key_id": key_id, "identity": identity, "role": role})
    return key_id, f"{PREFIX}{key_id}_{secret}"


def revoke_key(db: Database, key_id: str, actor: str) -> None:
    with db.transaction() as tx:
        if not tx.execute("UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
                          (fmt_time(utc_now()), key_id)):
            raise ConfigError("there is no active API key with this id")
        auditlog.append(tx, actor=actor, action="apikey_revoked", detail={"key_id": key_id})


def list_keys(db: Database) -> list[dict[str, str | None]]:
    with db.transaction(write=False) as tx:
        rows = tx.all("SELECT key_id, identity, role, created_at, revoked_at FROM api_keys "
                      "ORDER BY created_at")
    cols = ("key_id", "identity", "role", "created_at", "revoked_at")
    return [dict(zip(cols, r, strict=True)) for r in rows]


def active_key_count(db: Database) -> int:
    with db.transaction(write=False) as tx:
        row = tx.one("SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL")
    return int(row[0]) if row else 0


def authenticate(db: Database, presented: str) -> Caller | None:
    """The caller a presented key belongs to, or None (unknown, malformed or revoked)."""
    if not presented.startswith(PREFIX):
        return None
    key_id, sep, secret = presented[len(PREFIX):].partition("_")
    if not sep or len(key_id) != 16 or not secret:
        return None
    with db.transaction(write=False) as tx:
        row = tx.one("SELECT secret_hash, identity, role FROM api_keys "
                     "WHERE key_id = ? AND revoked_at IS NULL", (key_id,))
    if row is None:
        hmac.compare_digest(_hash(secret), "0" * 64)  # same work whether or not the id exists
        return None
    if not hmac.compare_digest(_hash(secret), str(row[0])):
        return None
    return Caller(str(row[1]), str(row[2]), key_id)
