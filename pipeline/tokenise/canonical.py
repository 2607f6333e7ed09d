"""Canonical bytes fed to the HMAC. FROZEN: version 1 must never change.

Changing a single byte of what this module produces changes every token ever minted, breaks
every analyst's joins across the change, and orphans every lookup entry. If the rules must
change, add ``canonical_v2`` beside this one, give it a new version tag, and keep v1 working;
the known-answer vectors in ``tests/tokenise/test_canonical_vectors.py`` lock v1.

Canonical form v1 of (domain, value)::

    b"auditveil/tok/v1" 0x00
    u16be(len(D)) D          D = UTF-8 of the domain label, e.g. b"prn" or b"ctx/customer_id"
    u32be(len(V)) V          V = UTF-8 of the NFC-normalised value, exact bytes

* Values are Unicode strings; the normaliser turns numbers and booleans into their JSON text
  before tokenising (``12`` → ``"12"``) so the same number always yields the same token.
* NFC so that "é" typed as one or two code points is one identity; no case folding, no
  trimming: ``Alice`` and ``alice`` are different principals in IAM and stay different.
* Length prefixes, not separators, so no choice of value can collide with another
  (domain, value) pair.
* Lone surrogates (which JSON can escape but UTF-8 cannot encode) are encoded with
  ``surrogatepass`` so they still get a stable token instead of an error.
"""

from __future__ import annotations

import struct
import unicodedata

CANONICAL_VERSION = 1
_TAG_V1 = b"auditveil/tok/v1\x00"
_MAX_DOMAIN = 0xFFFF


def canonical_v1(domain: str, value: str) -> bytes:
    """The exact bytes HMAC'd for ``value`` in ``domain`` (version 1, frozen)."""
    d = unicodedata.normalize("NFC", domain).encode("utf-8", "surrogatepass")
    if len(d) > _MAX_DOMAIN:
        raise ValueError("domain label too long")
    v = unicodedata.normalize("NFC", value).encode("utf-8", "surrogatepass")
    return b"".join((_TAG_V1, struct.pack(">H", len(d)), d, struct.pack(">I", len(v)), v))
