"""Synthetic audit events for the streaming tests: unique ids, identifiers that must vanish."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import orjson

BASE = dt.datetime(2026, 11, 28, 23, 0, 0, tzinfo=dt.UTC)  # spans two event dates

# Values that must never appear in the output (the leak check looks for them).
SECRET_MARKERS = ("eu-user-88", "alice.", "@example.eu", "198.51.100.", "AKIAEXAMPLE")


def event_id(i: int) -> str:
    # Letters in every group, so no run of digits looks like an account id to the safety net.
    return f"{i:08x}-feed-4abc-8def-cafe{i:08x}"


def cloudtrail_event(i: int, step_ms: int = 50) -> dict[str, object]:
    when = BASE + dt.timedelta(milliseconds=step_ms * i)
    user = f"alice.{i % 37}@example.eu"
    return {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "IAMUser", "principalId": f"AIDAEXAMPLE{i % 37:08d}",
            "arn": f"arn:aws:iam::123456789012:user/{user}", "accountId": "123456789012",
            "accessKeyId": f"AKIAEXAMPLE{i % 37:09d}", "userName": user,
        },
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": "kms.amazonaws.com",
        "eventName": "Decrypt",
        "awsRegion": "eu-central-1",
        "sourceIPAddress": f"198.51.100.{i % 200}",
        "userAgent": "aws-sdk-java/2.20.0",
        "requestParameters": {
            "encryptionContext": {"customer_id": f"eu-user-88{i % 1000:04d}", "resource_type": "health_record"},
            "encryptionAlgorithm": "SYMMETRIC_DEFAULT",
        },
        "responseElements": None,
        "requestID": str(uuid.UUID(int=(0xBEEF << 96) + i)),
        "eventID": event_id(i),
        "readOnly": True,
        "eventType": "AwsApiCall",
        "recipientAccountId": "123456789012",
    }


def vault_line(i: int) -> dict[str, object]:
    when = BASE + dt.timedelta(milliseconds=50 * i)
    return {
        "time": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "type": "response",
        "auth": {"display_name": f"alice.{i % 37}@example.eu", "entity_id": str(uuid.UUID(int=i + 7)),
                 "policies": ["default"], "metadata": {"email": f"alice.{i % 37}@example.eu"}},
        "request": {"id": event_id(i), "operation": "update", "path": "transit/encrypt/orders",
                    "remote_address": f"198.51.100.{i % 200}",
                    "data": {"context": f"eu-user-88{i % 1000:04d}"}},
        "response": {"data": {"ciphertext": "hmac-sha256:abcdef"}},
    }


def messages(n: int, partitions: int = 1, every_nth_vault: int = 5, batch_every: int = 0) -> Iterator[
    tuple[int, bytes]
]:
    """``n`` events as ``(partition, message)``; some are Vault lines, some CloudTrail batches.

    With ``batch_every`` > 0, every that-many events are sent as one ``{"Records": [...]}``.
    """
    i = 0
    while i < n:
        part = i % partitions
        if batch_every and i % batch_every == 0 and i + 3 <= n:
            body = {"Records": [cloudtrail_event(j) for j in range(i, i + 3)]}
            yield part, orjson.dumps(body)
            i += 3
            continue
        if every_nth_vault and i % every_nth_vault == every_nth_vault - 1:
            yield part, orjson.dumps(vault_line(i))
        else:
            yield part, orjson.dumps(cloudtrail_event(i))
        i += 1


def output_id(event_id_column: str) -> str:
    """The generator's event id behind an output ``event_id`` (Vault ids carry ``:response``)."""
    return event_id_column.split(":", 1)[0]


def expected_ids(n: int) -> set[str]:
    """The generator event ids of ``messages(n, …)`` (every i in range(n) is exactly one event)."""
    return {event_id(i) for i in range(n)}
