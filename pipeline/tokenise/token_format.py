"""Token text: ``<domain>.k<key version>.<26 base32 characters>``.

The 26 characters are the first 128 bits of the HMAC-SHA256, in lowercase RFC 4648 base32
without padding: printable, URL- and file-name-safe, case-insensitive-stable, and
unambiguous to split on ``.``. Example: ``prn.k1.3x7q…``.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

MAC_BYTES = 16  # 128 bits of MAC in every token
TOKEN_RE = re.compile(r"\b([a-z]{2,5})\.k([1-9][0-9]{0,3})\.([a-z2-7]{26})\b")


def format_token(domain: str, key_version: int, mac: bytes) -> str:
    body = base64.b32encode(mac[:MAC_BYTES]).decode("ascii").rstrip("=").lower()
    return f"{domain}.k{key_version}.{body}"


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
