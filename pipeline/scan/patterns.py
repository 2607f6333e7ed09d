"""Shapes of identifiers that must never appear in clear in auditveil's output.

Used twice: by the leak scanner over every output byte, and by the sanitiser as a safety net
on values a policy *keeps* (an e-mail address typed into an event name is tokenised, not kept).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

PATTERNS: dict[str, re.Pattern[str]] = {
    "arn_with_account": re.compile(r"arn:aws[a-z-]*:[a-z0-9-]*:[a-z0-9-]*:\d{12}:"),
    "aws_access_key": re.compile(
        r"(?<![A-Z0-9])(?:AKIA|ASIA|AIDA|AROA|AIPA|ANPA|ANVA|AGPA|APKA)[A-Z0-9]{12,}(?![A-Z0-9])"
    ),
    # The look-behind makes a match start only where a run of local-part characters starts, so
    # a long run without "@" is scanned once, not once per position (quadratic otherwise).
    "email": re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"),
    # Not inside a longer run of dotted numbers (1.2.3.4.5 is a version), but found after or
    # before a dotted word: "kv.198.51.100.7.read" (a value glued into a kept field) is an IP.
    "ipv4": re.compile(
        r"(?<!\d)(?<!\d\.)(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?!\d)(?!\.\d)"
    ),
    "ipv6": re.compile(
        r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}(?![0-9A-Fa-f:])"
        # Compressed form: groups after "::" are colon-separated. (An optional colon there let a
        # long hex run be split into groups in exponentially many ways: catastrophic backtracking.)
        r"|(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{1,4}:){1,6}:(?:[0-9A-Fa-f]{1,4}:){0,6}[0-9A-Fa-f]{1,4}(?![0-9A-Fa-f:])"
    ),
    # Twelve digits, but not the last group of a UUID (…-4a5b-000000001234).
    # Likewise not inside dotted numbers (0.123456789012), but "h210987654321.amazonaws.com" counts.
    "account_id": re.compile(r"(?<!\d)(?<!\d\.)(?<![0-9A-Fa-f]{4}-)\d{12}(?!\d)(?!\.\d)"),
}

# A superset of every pattern above, without look-arounds, for Arrow's RE2 engine (which has
# none): a value it does not match cannot match any pattern; a value it matches is checked with
# ``looks_identifying``. Each alternative is what its pattern cannot match without; ``\p{Nd}``
# because Python's ``\d`` matches every Unicode decimal digit, RE2's only ASCII ones.
PREFILTER = "|".join((
    r"arn:aws",                                                        # arn_with_account
    r"(?:AKIA|ASIA|AIDA|AROA|AIPA|ANPA|ANVA|AGPA|APKA)[A-Z0-9]{12}",   # aws_access_key
    r"@",                                                              # email
    r"\p{Nd}{1,3}\.\p{Nd}{1,3}\.\p{Nd}{1,3}\.\p{Nd}{1,3}",              # ipv4
    r"[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{0,4}:",                             # ipv6, either form
    r"\p{Nd}{12}",                                                     # account_id
))

_ANY = re.compile("|".join(f"(?:{p.pattern})" for p in PATTERNS.values()))
_SAFE_CHARS = "0123456789abcdefABCDEF-"
_DIGIT_RUN = re.compile(r"\d{12}")


_HEX = frozenset("0123456789abcdefABCDEF")
# Twelve digits inside a hex token of 20+ characters (a DEK id, a digest, a hex request id) are
# part of that token, not an account id: about 1% of random 32-character hex ids hold such a run.
_MIN_HEX_TOKEN = 20


def _inside_hex_token(text: str, start: int, end: int) -> bool:
    """True if [start, end) lies in a run of at least _MIN_HEX_TOKEN hex characters.

    Looks at most the missing number of characters on each side, so it stays linear."""
    need = _MIN_HEX_TOKEN - (end - start)
    left = 0
    while left < need and start - left > 0 and text[start - left - 1] in _HEX:
        left += 1
    right = 0
    while left + right < need and end + right < len(text) and text[end + right] in _HEX:
        right += 1
    return left + right >= need


def _is_account_in_hex(text: str, m: re.Match[str]) -> bool:
    return len(m.group(0)) == 12 and m.group(0).isdigit() and _inside_hex_token(text, m.start(), m.end())


def looks_identifying(value: str) -> bool:
    """True if ``value`` contains anything shaped like an identifier (fast path for UUIDs)."""
    if len(value) <= 40 and not value.strip(_SAFE_CHARS) and not _DIGIT_RUN.search(value):
        # Pure hex-and-dash strings (UUIDs, request ids) up to 40 characters without a run of
        # 12 digits: nothing here can match (no '@', ':' or '.'); skip the full search.
        return False
    m = _ANY.search(value)
    if m is None:
        return False
    if not _is_account_in_hex(value, m):
        return True
    return bool(find_identifiers(value))  # rare: the first hit was a hex token; look at all


def maybe_identifying(values: pa.Array) -> pa.Array:
    """Per string of ``values``: False where it certainly holds no identifier (one pass in C++
    over a whole column), True where ``looks_identifying`` must look; nulls are False."""
    import pyarrow.compute as pc

    return pc.fill_null(pc.match_substring_regex(values, PREFILTER), False)


def find_identifiers(text: str) -> list[tuple[str, int]]:
    """Every (pattern name, offset) found in ``text`` — never the matched text itself."""
    hits: list[tuple[str, int]] = []
    for name, pat in PATTERNS.items():
        hits.extend((name, m.start()) for m in pat.finditer(text)
                    if name != "account_id" or not _is_account_in_hex(text, m))
    return hits
