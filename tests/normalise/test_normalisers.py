from __future__ import annotations

from typing import Any

import pytest

from pipeline.normalise import cloudtrail, vault
from pipeline.normalise.flatten import TOO_DEEP, leftovers


def test_cloudtrail_key_ref_falls_back_to_the_kms_resource() -> None:
    arn = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    cols, _ = cloudtrail.normalise({"eventName": "Decrypt", "resources": [
        {"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::b/k"}, {"type": "AWS::KMS::Key", "ARN": arn}]})
    assert cols["key_ref"] == arn
    assert cols["resources"] == [{"type": "AWS::S3::Object", "ref": "arn:aws:s3:::b/k"},
                                 {"type": "AWS::KMS::Key", "ref": arn}]


def test_cloudtrail_outcome_and_read_only_as_text() -> None:
    cols, _ = cloudtrail.normalise({"eventName": "Decrypt", "errorCode": "AccessDenied", "readOnly": "true"})
    assert (cols["outcome"], cols["read_only"]) == ("failure", True)
    cols, _ = cloudtrail.normalise({"userIdentity": None})
    assert cols["outcome"] is None and cols["actor_arn"] is None


@pytest.mark.parametrize(("request_", "operation", "key_ref"), [
    ({"path": "transit/encrypt/orders", "operation": "update", "mount_type": "transit"}, "transit.encrypt",
     "transit/orders"),
    ({"path": "transit/datakey/plaintext/orders", "operation": "update"}, "transit.datakey", "transit/orders"),
    ({"path": "secret/data/x", "operation": "read", "mount_type": "kv"}, "kv.read", None),
    ({"path": "kmip/scope/s/role/r/op", "operation": "update", "mount_type": "kmip", "data": {"operation": "Encrypt"}},
     "kmip.Encrypt", None),
    ({"operation": "read"}, "read", None),
])
def test_vault_operations(request_: dict[str, Any], operation: str, key_ref: str | None) -> None:
    cols, _ = vault.normalise({"type": "response", "request": {"id": "r", **request_}})
    assert (cols["operation"], cols["key_ref"]) == (operation, key_ref)
    assert cols["event_id"] == "r:response"


def test_vault_failure_and_odd_shapes() -> None:
    cols, _ = vault.normalise({"type": "response", "error": "permission denied", "auth": "x", "request": 3})
    assert cols["outcome"] == "failure" and cols["error_code"] == "permission denied"
    assert cols["event_id"] is None and cols["actor_name"] is None


def test_leftovers_skip_consumed_and_bound_depth() -> None:
    obj = {"a": 1, "b": {"c": 2, "d": [3, {"e": 4}]}, "skip": {"x": 1}, "n": None}
    assert sorted(leftovers(obj, {"skip": True})) == [("a", 1), ("b.c", 2), ("b.d[]", 3), ("b.d[].e", 4)]
    deep: dict[str, Any] = {}
    cur = deep
    for _ in range(50):
        cur["k"] = {}
        cur = cur["k"]
    cur["v"] = 1
    assert (TOO_DEEP, None) in list(leftovers(deep, None, max_depth=10))
