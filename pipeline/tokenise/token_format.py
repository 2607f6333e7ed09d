"""Token text: ``<domain>.k<key version>.<26 base32 characters>``.

The 26 characters are the first 128 bits of the HMAC-SHA256, in lowercase RFC 4648 base32
without padding: printable, URL- and file-name-safe, case-insensitive-stable, and
unambiguous to split on ``.``. Example: ``prn.k1.3x7q…``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAC_BYTES = 16  # 128 bits of MAC in every token
TOKEN_RE = re.compile(r"\b([a-z]{2,5})\.k([1-9][0-9]{0,3})\.([a-z2-7]{26})\b")


# RFC 4648 base32 of 16 bytes, lowercase, without padding: 26 characters = 130 bits, the last
# two of them zero. Computed ten bits (two characters) at a time: ``base64.b32encode`` is pure
# Python and cost ~2.5 µs per token. Equality with it is tested.
_B32 = "abcdefghijklmnopqrstuvwxyz234567"
_PAIRS = tuple(a + b for a in _B32 for b in _B32)
_SHIFTS = tuple(range(120, -1, -10))


def b32_body(mac: bytes) -> str:
    n = int.from_bytes(mac[:MAC_BYTES], "big") << 2
    return "".join([_PAIRS[(n >> s) & 0x3FF] for s in _SHIFTS])


def format_token(domain: str, key_version: int, mac: bytes) -> str:
    return f"{domain}.k{key_version}.{b32_body(mac)}"


@dataclass(frozen=True)
class ParsedToken:
    domain: str
    key_version: int
    body: str


def parse_token(text: str) -> ParsedToken | None:
    m = TOKEN_RE.fullmatch(text)
    if not m:
        return None
    return ParsedToken(m.group(1), int(m.group(2)), m.group(3))
