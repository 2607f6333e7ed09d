"""Identifiers glued to dotted words are still identifiers (found by the canary harness).

Vault's normaliser builds ``operation`` as ``<mount type>.<operation>`` and the policy keeps it
in clear behind the safety net; with a mount type of ``198.51.100.7`` the kept value was
``198.51.100.7.read``, which the IPv4 and account patterns skipped because a dot touched the
match. A dot before or after now only excludes a match inside a longer run of dotted *numbers*.
"""

from __future__ import annotations

import pytest

from pipeline.scan.patterns import find_identifiers, looks_identifying


@pytest.mark.parametrize("value,kind", [
    ("198.51.100.7.read", "ipv4"),
    ("kv.198.51.100.7", "ipv4"),
    ("x.198.51.100.7.y", "ipv4"),
    ("from 198.51.100.7.", "ipv4"),
    ("210987654321.read", "account_id"),
    ("h210987654321.amazonaws.com", "account_id"),
    ("acct.210987654321", "account_id"),
])
def test_identifiers_next_to_dotted_words_are_found(value: str, kind: str) -> None:
    assert kind in [k for k, _ in find_identifiers(value)]
    assert looks_identifying(value)


@pytest.mark.parametrize("value", [
    "1.2.3.4.5", "10.0.0.1.2", "0.123456789012", "3.210987654321", "1234567890123.5", "2.20.0",
    "7a1b2c3d-0000-4000-8000-000000001234", "2026-11-27T10:00:00.123456789012Z",
])
def test_dotted_numbers_are_not_identifiers(value: str) -> None:
    assert not looks_identifying(value), value


def test_the_sanitiser_tokenises_a_glued_ip(local_sanitiser: object) -> None:
    from pipeline.sources.records import Record

    entry = {"time": "2026-11-27T10:00:00Z", "type": "request",
             "request": {"id": "r1", "operation": "read", "mount_type": "198.51.100.7", "path": "x/y"}}
    row = local_sanitiser.sanitise([Record("vault", entry, "p")]).table.to_pylist()[0]  # type: ignore[attr-defined]
    assert "198.51.100.7" not in str(row)


# -- hex tokens (found by the canary harness: ~1% of DEK ids were reported as account ids) ------

@pytest.mark.parametrize("value", [
    "43cd70a473464426924aee910adc4d72",  # a uuid4().hex DEK id with a 12-digit run
    "dek_id 43cd70a473464426924aee910adc4d72 in text",
    "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" + "123456789012" + "ab",
    "ffffffff210987654321",  # 20 hex characters
])
def test_twelve_digits_inside_a_hex_token_are_not_an_account(value: str) -> None:
    assert "account_id" not in [k for k, _ in find_identifiers(value)]
    assert not looks_identifying(value)


@pytest.mark.parametrize("value", [
    "210987654321", "acct 210987654321", "fff210987654321", "x-210987654321-y", "a210987654321b",
    "deadbeef 210987654321 cafe",
])
def test_accounts_next_to_short_hex_are_still_accounts(value: str) -> None:
    assert "account_id" in [k for k, _ in find_identifiers(value)]
    if len(value) > 40 or value.strip("0123456789abcdefABCDEF-"):
        # (the safety net's fast path treats short pure hex-and-dash strings as request ids)
        assert looks_identifying(value)


def test_hex_token_check_stays_linear() -> None:
    import time

    text = ("123456789012a" * 6000)  # every 12-digit run inside one long hex run
    start = time.perf_counter()
    assert find_identifiers(text) == [] and not looks_identifying(text)
    assert time.perf_counter() - start < 2.0
