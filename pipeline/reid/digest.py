"""The exact bytes a custodian signs. FROZEN: version 1 must never change.

A re-identification request is reduced to a **canonical request document** — a JSON object
serialised with sorted keys, no whitespace, UTF-8 (non-ASCII characters are not escaped)::

    {"case":"<case id>","created_at":"<UTC time>","expires_at":"<UTC time>",
     "format":"auditveil-reid-request/v1","id":"<request id>","reason":"<reason>",
     "requester":"<requester>","tokens":["<token>",...]}

(shown wrapped; the real document is one line). Times are ``YYYY-MM-DDTHH:MM:SS.ffffffZ``;
``tokens`` are sorted and unique; every string is NFC-normalised.

The **request digest** is the lowercase hex SHA-256 of that document. A custodian's Ed25519
signature is made over the **decision message**, ASCII::

    auditveil-reid/v1:approve:<request digest>      (an approval)
    auditveil-reid/v1:deny:<request digest>         (a denial)

so that an approval cannot be replayed onto another request (the digest names the request
id, case, reason, requester, tokens and expiry) and a denial cannot be turned into an
approval. Anyone can recompute both from the stored request and check a signature with the
custodian's public key: ``openssl pkeyutl -verify -pubin -inkey custodian.pub.pem -rawin
-in message -sigfile sig``.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

import orjson

REQUEST_FORMAT = "auditveil-reid-request/v1"
MESSAGE_PREFIX = "auditveil-reid/v1"
DECISIONS = ("approve", "deny")


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


@dataclass(frozen=True)
class RequestFacts:
    """What a custodian approves: everything that defines the request, nothing mutable."""

    id: str
    case: str
    reason: str
    requester: str
    tokens: tuple[str, ...]
    created_at: str
    expires_at: str


def canonical_tokens(tokens: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted({_nfc(t) for t in tokens}))


def canonical_request(facts: RequestFacts) -> bytes:
    """The canonical request document (version 1, frozen)."""
    doc = {
        "case": _nfc(facts.case),
        "created_at": facts.created_at,
        "expires_at": facts.expires_at,
        "format": REQUEST_FORMAT,
        "id": facts.id,
        "reason": _nfc(facts.reason),
        "requester": _nfc(facts.requester),
        "tokens": list(canonical_tokens(facts.tokens)),
    }
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


def request_digest(facts: RequestFacts) -> str:
    return hashlib.sha256(canonical_request(facts)).hexdigest()


def decision_message(digest: str, decision: str) -> bytes:
    """The bytes an approval (``approve``) or a denial (``deny``) signature covers."""
    if decision not in DECISIONS:
        raise ValueError("decision must be approve or deny")
    return f"{MESSAGE_PREFIX}:{decision}:{digest}".encode("ascii")
