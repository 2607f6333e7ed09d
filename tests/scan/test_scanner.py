from __future__ import annotations

from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.scan.patterns import find_identifiers, looks_identifying
from pipeline.scan.scanner import original_values, scan_location
from pipeline.storage.fs import resolve


def test_patterns_find_each_kind_and_spare_tokens_and_uuids() -> None:
    text = ("arn:aws:iam::111122223333:user/x AKIAABCDEFGHIJKLMNOP a.b@example.org 203.0.113.9 "
            "2001:db8::1 111122223333")
    kinds = {k for k, _ in find_identifiers(text)}
    assert kinds >= {"arn_with_account", "aws_access_key", "email", "ipv4", "ipv6", "account_id"}
    for safe in ("prn.k1.gi5piueyqq7tnbxs7tsjrnu7u4", "abcde202-ba1a-467c-b4ba-f729d45ae521",
                 "aws-cli/2.15.22", "kms.amazonaws.com", "2026-11-27T08:00:00Z"):
        assert not looks_identifying(safe), safe


def test_scan_reads_maps_lists_and_other_files_and_never_prints_values(tmp_path: Path) -> None:
    part = tmp_path / "source=vault" / "event_date=2026-11-27"
    part.mkdir(parents=True)
    table = pa.table({
        "encryption_context": pa.array([[("customer_id", "ctx.k1.aaaaaaaaaaaaaaaaaaaaaaaaaa")],
                                        [("owner", "x@example.org")]], pa.map_(pa.string(), pa.string())),
        "resources": pa.array([[{"type": "t", "ref": "10.1.2.3"}], []],
                              pa.list_(pa.struct([("type", pa.string()), ("ref", pa.string())]))),
    })
    pq.write_table(table, part / "part-1.parquet")
    (tmp_path / "_runs").mkdir()
    (tmp_path / "_runs" / "run.json").write_text('{"note": "contact 111122223333"}')
    report = scan_location(resolve(str(tmp_path)))
    kinds = {(col, kind) for (_, col, kind) in report.findings}
    assert {("encryption_context", "email"), ("resources", "ipv4"), ("-", "account_id")} <= kinds
    assert report.files == 2 and not report.clean


def test_originals_are_what_the_policy_hides(tmp_path: Path) -> None:
    ev = {"eventName": "Decrypt", "eventSource": "kms.amazonaws.com", "sourceIPAddress": "s3.amazonaws.com",
          "userIdentity": {"userName": "plain-user-name", "arn": "arn:aws:iam::111122223333:user/plain"},
          "requestParameters": {"encryptionContext": {"customer_id": "cust-42", "resource_type": "invoice"}}}
    (tmp_path / "in.json").write_bytes(orjson.dumps({"Records": [ev]}))
    values = original_values([str(tmp_path / "in.json")])
    assert {"plain-user-name", "cust-42", "111122223333"} <= values
    assert "invoice" not in values and "Decrypt" not in values and "s3.amazonaws.com" not in values
