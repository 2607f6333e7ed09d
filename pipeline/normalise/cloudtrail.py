"""CloudTrail event → normalised columns (raw values; the sanitiser applies the policy).

Follows the CloudTrail record contents documented by AWS (eventVersion 1.0 to 1.11), including
Insight events (``eventType: AwsCloudTrailInsight``) and records whose fields are null.
"""

from __future__ import annotations

from typing import Any

from pipeline.normalise.flatten import Consumed, get

CONSUMED: Consumed = {
    "eventID": True, "eventTime": True, "eventSource": True, "eventName": True, "errorCode": True,
    "awsRegion": True, "sourceIPAddress": True, "userAgent": True, "requestID": True, "readOnly": True,
    "resources": True, "recipientAccountId": True, "eventType": True,
    "userIdentity": {
        "type": True, "principalId": True, "arn": True, "accountId": True, "accessKeyId": True,
        "userName": True,
    },
    "requestParameters": {"encryptionContext": True, "keyId": True},
}


def _key_ref(e: dict[str, Any]) -> Any:
    key = get(e, "requestParameters", "keyId")
    if key is not None:
        return key
    resources = e.get("resources")
    if isinstance(resources, list):
        for r in resources:
            if isinstance(r, dict) and r.get("type") == "AWS::KMS::Key" and r.get("ARN"):
                return r["ARN"]
    return None


def _resources(e: dict[str, Any]) -> list[dict[str, Any]] | None:
    resources = e.get("resources")
    if not isinstance(resources, list):
        return None
    out = []
    for r in resources:
        if isinstance(r, dict):
            out.append({"type": r.get("type"), "ref": r.get("ARN")})
    return out


def normalise(e: dict[str, Any]) -> tuple[dict[str, Any], Consumed]:
    ui = e.get("userIdentity")
    ui = ui if isinstance(ui, dict) else {}
    error_code = e.get("errorCode")
    read_only = e.get("readOnly")
    if isinstance(read_only, str):
        read_only = read_only.lower() == "true"
    cols = {
        "event_id": e.get("eventID"),
        "event_time": e.get("eventTime"),
        "service": e.get("eventSource"),
        "operation": e.get("eventName"),
        "outcome": ("failure" if error_code else "success") if e.get("eventName") is not None else None,
        "error_code": error_code,
        "region": e.get("awsRegion"),
        "key_ref": _key_ref(e),
        "actor_type": ui.get("type"),
        "actor_id": ui.get("principalId"),
        "actor_arn": ui.get("arn"),
        "actor_name": ui.get("userName"),
        "actor_account": ui.get("accountId"),
        "actor_access_key": ui.get("accessKeyId"),
        "actor_attributes": None,
        "source_ip": e.get("sourceIPAddress"),
        "user_agent": e.get("userAgent"),
        "encryption_context": get(e, "requestParameters", "encryptionContext"),
        "request_id": e.get("requestID"),
        "read_only": read_only if isinstance(read_only, bool) else None,
        "resources": _resources(e),
        "recipient_account": e.get("recipientAccountId"),
        "event_type": e.get("eventType"),
    }
    return cols, CONSUMED
