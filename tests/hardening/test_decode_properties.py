"""Hostile bytes into ``pipeline.sources.decode``: it never raises, only ever yields Record /
Rejected / Skipped, accounts for every line, bounds decompression and nesting, and puts no
input content in anything that is logged (positions, error classes)."""

from __future__ import annotations

import gzip
import zlib

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.scan.patterns import find_identifiers
from pipeline.sources.decode import Limits, decode, gunzip_bounded
from pipeline.sources.records import Record, Rejected, Skipped
from tests.hardening.strategies import IDENTIFIERS, cloudtrail_events, json_values, vault_entries

ERROR_CLASSES = {"json", "gzip", "shape", "unknown_format", "too_large", "too_deep"}
SMALL = Limits(max_record_bytes=4096, max_decompressed_bytes=64 * 1024, max_depth=16)
POSITION = "input #1"


def _items(data: bytes, fmt: str = "auto", limits: Limits = SMALL) -> list[Record | Rejected | Skipped]:
    items = list(decode(data, fmt, POSITION, limits))
    for item in items:
        assert isinstance(item, Record | Rejected | Skipped)
        assert item.position.startswith(POSITION)
        assert not find_identifiers(item.position)
        if isinstance(item, Rejected):
            assert item.error_class in ERROR_CLASSES
            assert item.source in ("cloudtrail", "vault", "unknown")
            assert isinstance(item.raw, bytes)
        if isinstance(item, Record):
            assert item.kind in ("cloudtrail", "vault")
            assert isinstance(item.payload, dict)
            orjson.dumps(item.payload)  # the sanitiser's dead-letter path must be able to re-encode it
    return items


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048), st.sampled_from(["auto", "cloudtrail", "vault"]))
def test_arbitrary_bytes_never_raise(data: bytes, fmt: str) -> None:
    _items(data, fmt)


@settings(max_examples=150, deadline=None, database=None)
@given(st.binary(max_size=512))
def test_arbitrary_bytes_behind_gzip_magic_never_raise(data: bytes) -> None:
    _items(b"\x1f\x8b" + data)
    _items(gzip.compress(data))


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values(30), st.sampled_from(["auto", "cloudtrail", "vault"]))
def test_arbitrary_json_documents_never_raise(value: object, fmt: str) -> None:
    body = orjson.dumps(value)
    _items(body, fmt)
    _items(orjson.dumps({"Records": value}), fmt)
    _items(gzip.compress(body), fmt)


@settings(max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(cloudtrail_events(), vault_entries()), min_size=1, max_size=8),
       st.lists(st.binary(min_size=1, max_size=40).filter(lambda b: b"\n" not in b and b.strip()), max_size=4),
       st.randoms(use_true_random=False))
def test_every_line_is_accounted_for(events: list[dict[str, object]], garbage: list[bytes], rnd: object) -> None:
    """N non-blank lines (after a valid first line) → exactly N items, one per line."""
    lines = [orjson.dumps(e) for e in events]
    rest = lines[1:] + garbage
    rnd.shuffle(rest)  # type: ignore[attr-defined]
    data = b"\n".join([lines[0], *rest]) + b"\n"
    items = _items(data, "auto", Limits(max_record_bytes=1 << 20, max_decompressed_bytes=1 << 22, max_depth=64))
    expected = sum(1 for line in data.split(b"\n") if line.strip())
    assert len(items) == expected
    assert len({i.position for i in items}) == expected  # each line once, each position distinct


@pytest.mark.parametrize("depth", [15, 16, 17, 63, 64, 65, 254, 255, 256, 300, 1023, 1024, 1025, 5000])
@pytest.mark.parametrize("opener", [b"[", b'{"a":'])
def test_deep_nesting_is_rejected_not_crashed(depth: int, opener: bytes) -> None:
    closer = b"]" if opener == b"[" else b"}"
    nested = opener * depth + b"1" + closer * depth
    for data in (
        nested,
        b'{"eventName":"Decrypt","eventID":"e","requestParameters":{"keyId":' + nested + b"}}",
        b'{"Records":[{"eventName":"Decrypt","x":' + nested + b'},{"eventName":"Encrypt"}]}',
        b"[" + nested + b"]",
        b'{"eventName":"Decrypt"}\n{"eventName":"Decrypt","x":' + nested + b"}\n",
    ):
        items = _items(data)
        for item in items:
            if isinstance(item, Record):
                assert len(orjson.dumps(item.payload)) < 4 * len(data) + 64


def test_nesting_limit_is_exact() -> None:
    limits = Limits(max_depth=4)
    ok = b'{"eventName":"x","a":{"b":[1]}}'  # depth 3
    assert isinstance(next(decode(ok, "auto", POSITION, limits)), Record)
    edge = b'{"eventName":"x","a":{"b":[{"c":1}]}}'  # depth 4
    assert isinstance(next(decode(edge, "auto", POSITION, limits)), Record)
    deep = b'{"eventName":"x","a":{"b":[{"c":[1]}]}}'  # depth 5
    item = next(decode(deep, "auto", POSITION, limits))
    assert isinstance(item, Rejected) and item.error_class == "too_deep"
    assert item.raw == deep  # nothing is lost: the dead letter carries the whole line


@pytest.mark.parametrize("text", [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400"])
def test_nan_and_infinity_are_rejected(text: bytes) -> None:
    for data in (b'{"eventName":"Decrypt","x":' + text + b"}", b'{"Records":[{"eventName":"x","y":' + text + b"}]}"):
        items = _items(data)
        assert [type(i) for i in items] == [Rejected]
        assert items[0].error_class == "json"  # type: ignore[union-attr]


def test_invalid_utf8_and_lone_surrogates_are_rejected() -> None:
    for data in (b'{"eventName":"\xff\xfe"}', b'{"eventName":"\\ud800"}', b'{"eventName":"\xed\xa0\x80"}'):
        items = _items(data)
        assert [type(i) for i in items] == [Rejected]


def test_duplicate_keys_keep_one_value() -> None:
    items = _items(b'{"eventName":"Decrypt","eventName":"Encrypt","eventID":"1"}')
    assert isinstance(items[0], Record) and items[0].payload["eventName"] == "Encrypt"


def test_numbers_where_strings_belong_decode() -> None:
    items = _items(b'{"eventName":12,"eventID":1.5e3,"userIdentity":{"arn":210987654321}}')
    assert isinstance(items[0], Record)


@pytest.mark.parametrize("factor", [1, 10])
def test_gzip_bomb_is_bounded(factor: int) -> None:
    limit = 1 << 20
    bomb = gzip.compress(b"\x00" * (limit * factor + 1), compresslevel=9)
    assert len(bomb) < 20_000 * factor
    items = _items(bomb, limits=Limits(max_record_bytes=4096, max_decompressed_bytes=limit))
    assert [(type(i), getattr(i, "error_class", "")) for i in items] == [(Rejected, "too_large")]
    assert len(items[0].raw) <= 4096  # type: ignore[union-attr]


def test_gzip_members_bomb_is_bounded_across_members() -> None:
    member = gzip.compress(b" " * 40_000)
    with pytest.raises(ValueError):
        gunzip_bounded(member * 50, 1_000_000)
    assert len(gunzip_bounded(member * 2, 1_000_000)) == 80_000


def test_truncated_and_corrupt_gzip_are_rejected() -> None:
    good = gzip.compress(b'{"eventName":"Decrypt"}')
    for data in (good[:-6], good[:12], good[:10] + b"\x00" * 20, b"\x1f\x8b"):
        items = _items(data)
        assert [(type(i), getattr(i, "error_class", "")) for i in items] == [(Rejected, "gzip")]
    with pytest.raises(zlib.error):
        gunzip_bounded(good[:-6], 1000)


def test_huge_line_is_rejected_and_truncated() -> None:
    line = b'{"eventName":"Decrypt","x":"' + b"a" * 10_000 + b'"}'
    items = _items(b'{"eventName":"Encrypt"}\n' + line + b"\n")
    assert isinstance(items[0], Record)
    assert isinstance(items[1], Rejected) and items[1].error_class == "too_large"
    assert len(items[1].raw) <= SMALL.max_record_bytes


def test_identifiers_in_input_never_reach_positions_or_classes() -> None:
    data = b"\n".join(orjson.dumps({"eventName": i, i: i}) for i in IDENTIFIERS) + b"\nnot json " + b" ".join(
        i.encode() for i in IDENTIFIERS)
    for item in _items(data):
        text = f"{item.position} {getattr(item, 'error_class', '')} {getattr(item, 'reason', '')}"
        assert not any(i in text for i in IDENTIFIERS)
