from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest

from pipeline.sources.decode import Limits, decode, gunzip_bounded
from pipeline.sources.records import Record, Rejected, Skipped, redact_position

CT_EVENT = {"eventVersion": "1.08", "eventName": "Decrypt", "eventSource": "kms.amazonaws.com",
            "eventID": "e-1", "userIdentity": {"type": "IAMUser"}}
VAULT_ENTRY = {"time": "2026-11-27T08:00:00.123456789Z", "type": "request", "auth": {"display_name": "x"},
               "request": {"id": "r-1", "path": "transit/encrypt/k", "operation": "update"}}


def kinds(items: list[object]) -> list[str]:
    return [i.kind if isinstance(i, Record) else type(i).__name__ for i in items]


def test_records_document_pretty_and_compact() -> None:
    doc = {"Records": [CT_EVENT, CT_EVENT]}
    for data in (orjson.dumps(doc), orjson.dumps(doc, option=orjson.OPT_INDENT_2)):
        out = list(decode(data, "auto", "f"))
        assert kinds(out) == ["cloudtrail", "cloudtrail"]
        assert out[1].position == "f#record 1"  # type: ignore[union-attr]


def test_gzip_document() -> None:
    out = list(decode(gzip.compress(orjson.dumps({"Records": [CT_EVENT]})), "auto", "f"))
    assert kinds(out) == ["cloudtrail"]


def test_mixed_json_lines_are_detected_per_line() -> None:
    data = b"\n".join(orjson.dumps(x) for x in (CT_EVENT, VAULT_ENTRY, {"Records": [CT_EVENT]}))
    assert kinds(list(decode(data, "auto", "f"))) == ["cloudtrail", "vault", "cloudtrail"]


def test_eventbridge_envelope_is_unwrapped() -> None:
    env = {"version": "0", "detail-type": "AWS API Call via CloudTrail", "source": "aws.kms", "detail": CT_EVENT}
    (rec,) = decode(orjson.dumps(env), "auto", "f")
    assert isinstance(rec, Record) and rec.payload == CT_EVENT


def test_digest_and_notification_are_skipped() -> None:
    digest = {"awsAccountId": "1", "digestStartTime": "x", "digestEndTime": "y", "logFiles": []}
    note = {"Type": "Notification", "Message": "{}"}
    assert [i.reason for i in decode(orjson.dumps(digest), "auto", "f")] == ["digest"]  # type: ignore[union-attr]
    assert [i.reason for i in decode(orjson.dumps(note), "auto", "f")] == ["notification"]  # type: ignore[union-attr]


def test_bad_lines_are_rejected_one_by_one_and_the_rest_goes_on() -> None:
    data = orjson.dumps(CT_EVENT) + b"\n{not json\n" + orjson.dumps(VAULT_ENTRY) + b"\n[1, 2]\n\"str\"\n"
    out = list(decode(data, "auto", "f"))
    assert kinds(out) == ["cloudtrail", "Rejected", "vault", "Rejected", "Rejected", "Rejected"]
    bad = [o for o in out if isinstance(o, Rejected)]
    assert [b.error_class for b in bad] == ["json", "shape", "shape", "shape"]
    assert bad[0].raw == b"{not json" and bad[0].position == "f#line 2"


def test_broken_pretty_document_is_one_dead_letter() -> None:
    data = b'{\n  "Records": [\n    {"eventName": "x",\n  ]\n'
    (out,) = decode(data, "auto", "f")
    assert isinstance(out, Rejected) and out.error_class == "json" and out.raw == data


def test_unknown_shape_and_forced_format() -> None:
    (unknown,) = decode(b'{"hello": "world"}', "auto", "f")
    assert isinstance(unknown, Rejected) and unknown.error_class == "unknown_format"
    (forced,) = decode(b'{"hello": "world"}', "vault", "f")
    assert isinstance(forced, Record) and forced.kind == "vault"


def test_truncated_gzip_and_gzip_bomb_are_rejected() -> None:
    blob = gzip.compress(b"x" * 100_000)
    (trunc,) = decode(blob[:40], "auto", "f")
    assert isinstance(trunc, Rejected) and trunc.error_class == "gzip"
    (bomb,) = decode(blob, "auto", "f", Limits(max_decompressed_bytes=10_000))
    assert isinstance(bomb, Rejected) and bomb.error_class == "too_large"
    with pytest.raises(ValueError):
        gunzip_bounded(gzip.compress(b"y" * 5000), 100)


def test_multi_member_gzip() -> None:
    data = gzip.compress(orjson.dumps(CT_EVENT) + b"\n") + gzip.compress(orjson.dumps(VAULT_ENTRY) + b"\n")
    assert kinds(list(decode(data, "auto", "f"))) == ["cloudtrail", "vault"]


def test_oversized_line_is_rejected() -> None:
    big = b'{"eventName": "' + b"a" * 2000 + b'"}'
    data = orjson.dumps(CT_EVENT) + b"\n" + big + b"\n"
    out = list(decode(data, "auto", "f", Limits(max_record_bytes=1000)))
    assert kinds(out) == ["cloudtrail", "Rejected"]
    assert out[1].error_class == "too_large" and len(out[1].raw) == 1000  # type: ignore[union-attr]


def test_nan_and_deep_nesting_do_not_crash() -> None:
    out = list(decode(b'{"eventName": NaN}', "auto", "f"))
    assert all(isinstance(o, Rejected) for o in out)
    deep = b"[" * 5000 + b"]" * 5000
    assert all(isinstance(o, Rejected | Skipped) for o in decode(deep, "auto", "f"))


def test_shared_fixtures_all_decode(fixtures_dir: Path) -> None:
    total: dict[str, int] = {}
    for path in sorted(fixtures_dir.iterdir()):
        for item in decode(path.read_bytes(), "auto", path.name):
            total[type(item).__name__] = total.get(type(item).__name__, 0) + 1
    assert total["Record"] >= 40
    assert total["Rejected"] >= 2  # the bad JSON file and the wrong-format SQS body (and NOTICE.md)


def test_redact_position_masks_accounts_and_emails() -> None:
    p = "AWSLogs/111122223333/CloudTrail/eu-west-1/2026/11/27/111122223333_CloudTrail_x.json.gz"
    assert "111122223333" not in redact_position(p)
    assert "@" not in redact_position("exports/alice@example.com/f.json")
