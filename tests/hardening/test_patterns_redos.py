"""The identifier patterns run in linear time on hostile text (found by the pipeline fuzz target).

The sanitiser runs them over every value a policy keeps, and the leak scanner over every output
string; records may be up to ``pipeline.max_record_bytes`` (8 MiB). Before the fix, a 32 KiB run
of letters or digits took 3.5 s (quadratic: the e-mail pattern retried the whole run from every
position) and ``"g1::" + "f" * 30`` repeated took 2.5 s per 32 KiB (the compressed-IPv6 pattern
split hex runs in exponentially many ways), so one 8 MiB line stalled a worker for hours.
"""

from __future__ import annotations

import time

import pytest

from pipeline.scan.patterns import find_identifiers, looks_identifying

HOSTILE_UNITS = [
    "a", "1", "a.", "a@", "@a.", "a@a.", "%", "-", "a:", "1.", "0000-", "arn:aws:", "1:2:3:4:5:6:7:",
    "g1::" + "f" * 30, "g1:1:1:1:1:1::" + "f" * 30, "g1::ff:ff:ff:" + "f" * 20, "x" * 50 + "@",
]
SIZE = 64 * 1024  # the quadratic patterns took over 10 s on this; linear ones take well under 0.1 s


@pytest.mark.parametrize("unit", HOSTILE_UNITS)
def test_patterns_are_linear_on_hostile_text(unit: str) -> None:
    text = unit * (SIZE // len(unit))
    start = time.perf_counter()
    find_identifiers(text)
    looks_identifying(text)
    assert time.perf_counter() - start < 2.0


@pytest.mark.parametrize("value,kind", [
    ("alice@example.com", "email"),
    ("x a.b+c@d-e.example.co y", "email"),
    ("mail:bob_o'neil@example.org", "email"),
    ("2001:db8:85a3::8a2e:370:7334", "ipv6"),
    ("fe80::1", "ipv6"),
    ("2001:db8::1:2:3", "ipv6"),
    ("1:2:3:4:5:6:7:8", "ipv6"),
    ("[2001:db8::7]:443", "ipv6"),
    ("203.0.113.7", "ipv4"),
    ("arn:aws:iam::210987654321:user/x", "arn_with_account"),
    ("AKIAZZCANARY00000001", "aws_access_key"),
    ("210987654321", "account_id"),
])
def test_patterns_still_find_identifiers(value: str, kind: str) -> None:
    assert kind in [k for k, _ in find_identifiers(value)]
    assert looks_identifying(value)


@pytest.mark.parametrize("value", ["Decrypt", "kms.amazonaws.com", "eu-central-1",
                                   "7a1b2c3d-0000-4000-8000-000000000001", "transit/encrypt/orders",
                                   "aws-sdk-java/2.20.0", "1::abcdef"])
def test_patterns_leave_ordinary_values_alone(value: str) -> None:
    assert not looks_identifying(value)
