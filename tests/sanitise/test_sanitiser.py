from __future__ import annotations

import datetime as dt
import random
from typing import Any

import orjson
import pytest

from pipeline.sample.generate import cloudtrail_event, vault_entries
from pipeline.sanitise import Sanitiser, load_policies
from pipeline.sanitise.policy import parse_policy
from pipeline.scan.patterns import find_identifiers
from pipeline.schema import EVENT_SCHEMA, NULL_PARTITION
from pipeline.sources.records import Record
from pipeline.tokenise import Tokeniser, parse_token

# AWS's documented shape of a KMS Decrypt event with an encryption context (values invented).
KMS_DECRYPT: dict[str, Any] = {
    "eventVersion": "1.08",
    "userIdentity": {
        "type": "AssumedRole", "principalId": "AROAIGDTESTANDEXAMPLE:SampleUser01",
        "arn": "arn:aws:sts::111122223333:assumed-role/Admin/SampleUser01", "accountId": "111122223333",
        "accessKeyId": "ASIAIOSFODNN7EXAMPLE",
        "sessionContext": {
            "sessionIssuer": {"type": "Role", "principalId": "AROAIGDTESTANDEXAMPLE",
                              "arn": "arn:aws:iam::111122223333:role/Admin", "accountId": "111122223333",
                              "userName": "Admin"},
            "attributes": {"creationDate": "2020-07-14T20:59:09Z", "mfaAuthenticated": "false"},
        },
    },
    "eventTime": "2020-07-14T21:00:46Z",
    "eventSource": "kms.amazonaws.com",
    "eventName": "Decrypt",
    "awsRegion": "eu-west-1",
    "sourceIPAddress": "192.0.2.0",
    "userAgent": "aws-cli/2.0.30 Python/3.7.7 Linux/4.14.183-150.302.amzn2.x86_64 botocore/2.0.0dev34",
    "requestParameters": {
        "encryptionContext": {"customer_id": "eu-user-8847261", "resource_type": "health_record"},
        "encryptionAlgorithm": "SYMMETRIC_DEFAULT",
    },
    "responseElements": None,
    "requestID": "12345126-30d5-4b28-98b9-9153da559963",
    "eventID": "abcde202-ba1a-467c-b4ba-f729d45ae521",
    "readOnly": True,
    "resources": [{"accountId": "111122223333", "type": "AWS::KMS::Key",
                   "ARN": "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"}],
    "eventType": "AwsApiCall",
    "managementEvent": True,
    "recipientAccountId": "111122223333",
    "eventCategory": "Management",
    "someFutureField": {"with": "alice@example.com"},
}


def one(sanitiser: Sanitiser, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    batch = sanitiser.sanitise([Record(kind, payload, "p")])
    assert not batch.rejected
    (row,) = batch.table.to_pylist()
    return row


def all_strings(row: dict[str, Any]) -> str:
    return orjson.dumps(row, default=str).decode()


def test_kms_decrypt_is_pseudonymised(sanitiser: Sanitiser, tokeniser: Tokeniser) -> None:
    row = one(sanitiser, "cloudtrail", KMS_DECRYPT)
    assert row["event_id"] == KMS_DECRYPT["eventID"]
    assert row["event_time"] == dt.datetime(2020, 7, 14, 21, 0, 46, tzinfo=dt.UTC)
    assert (row["source"], row["event_date"]) == ("cloudtrail", "2020-07-14")
    assert (row["service"], row["operation"], row["outcome"], row["region"]) == (
        "kms.amazonaws.com", "Decrypt", "success", "eu-west-1")
    assert row["actor_type"] == "AssumedRole"
    for col, domain in (("actor_arn", "prn"), ("actor_id", "pid"), ("actor_account", "acct"),
                        ("actor_access_key", "akid"), ("source_ip", "ip"), ("recipient_account", "acct")):
        parsed = parse_token(row[col])
        assert parsed is not None and parsed.domain == domain, col
    assert row["actor_account"] == row["recipient_account"]  # same account, same domain, same token
    assert row["key_ref"].startswith("arn:aws:kms:eu-west-1:acct.k1.")
    assert row["key_ref"].endswith(":key/1234abcd-12ab-34cd-56ef-1234567890ab")
    assert row["user_agent"] == "aws-cli/2.0.30"
    ctx = dict(row["encryption_context"])
    assert ctx["resource_type"] == "health_record"  # kept: describes a kind of data
    assert ctx["customer_id"] == tokeniser.tokenise("ctx", "eu-user-8847261", "customer_id")
    extra = orjson.loads(row["extra"])
    assert extra["requestParameters.encryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    assert parse_token(extra["userIdentity.sessionContext.sessionIssuer.arn"]) is not None
    assert "someFutureField.with" not in extra  # unknown: dropped
    text = all_strings(row)
    for secret in ("111122223333", "SampleUser01", "192.0.2.0", "eu-user-8847261", "ASIAIOSFODNN7EXAMPLE",
                   "alice@example.com", "Linux/4.14"):
        assert secret not in text
    assert not find_identifiers(text)


def test_dropped_fields_are_counted(sanitiser: Sanitiser) -> None:
    batch = sanitiser.sanitise([Record("cloudtrail", KMS_DECRYPT, "p")])
    # tlsDetails is absent here; someFutureField.with and the resources' accountId are not in the policy
    assert batch.counts["dropped_fields"] >= 1
    assert batch.counts["events_in.cloudtrail"] == batch.counts["events_out.cloudtrail"] == 1


def test_failed_call_and_error_message_dropped(sanitiser: Sanitiser) -> None:
    ev = dict(KMS_DECRYPT, errorCode="AccessDenied",
              errorMessage="User: arn:aws:sts::111122223333:assumed-role/Admin/x is not authorized")
    row = one(sanitiser, "cloudtrail", ev)
    assert (row["outcome"], row["error_code"]) == ("failure", "AccessDenied")
    assert "111122223333" not in all_strings(row)


def test_safety_net_tokenises_identifier_shaped_kept_values(sanitiser: Sanitiser) -> None:
    ev = dict(KMS_DECRYPT, eventName="alice@example.com", awsRegion="10.1.2.3")
    batch = sanitiser.sanitise([Record("cloudtrail", ev, "p")])
    row = batch.table.to_pylist()[0]
    assert parse_token(row["operation"]).domain == "xtr"  # type: ignore[union-attr]
    assert parse_token(row["region"]).domain == "xtr"  # type: ignore[union-attr]
    assert batch.counts["kept_values_tokenised"] == 2


def test_vault_transit_entry(sanitiser: Sanitiser) -> None:
    entry = {
        "time": "2026-11-27T08:00:01.123456789Z", "type": "response",
        "auth": {"display_name": "oidc-alice@example.com", "entity_id": "7d2e3b1c-0000-4000-8000-000000000001",
                 "metadata": {"email": "alice@example.com", "role": "transit-app"}, "token_type": "service",
                 "policies": ["default", "transit-app"], "client_token": "hmac-sha256:abcd"},
        "request": {"id": "req-1", "operation": "update", "mount_type": "transit", "mount_point": "transit/",
                    "path": "transit/encrypt/customer-records", "remote_address": "10.20.1.7",
                    "data": {"plaintext": "hmac-sha256:ffff", "context": "eu-user-0000042"},
                    "headers": {"x-custom": ["alice@example.com"]}},
        "response": {"data": {"ciphertext": "hmac-sha256:eeee", "key_version": 3}},
    }
    row = one(sanitiser, "vault", entry)
    assert row["event_id"] == "req-1:response"
    assert (row["source"], row["service"], row["operation"]) == ("vault", "transit", "transit.encrypt")
    assert row["key_ref"] == "transit/customer-records"
    assert row["outcome"] == "success" and row["read_only"] is False
    assert row["event_time"] == dt.datetime(2026, 11, 27, 8, 0, 1, 123456, tzinfo=dt.UTC)
    assert parse_token(row["actor_name"]).domain == "usr"  # type: ignore[union-attr]
    assert parse_token(row["actor_id"]).domain == "pid"  # type: ignore[union-attr]
    attrs = dict(row["actor_attributes"])
    assert attrs["role"] == "transit-app" and parse_token(attrs["email"]).domain == "meta"  # type: ignore[union-attr]
    assert parse_token(dict(row["encryption_context"])["context"]).domain == "ctx"  # type: ignore[union-attr]
    assert row["resources"] == [{"type": "vault_path", "ref": "transit/encrypt/customer-records"}]
    extra = orjson.loads(row["extra"])
    assert extra["auth.policies[]"] == ["default", "transit-app"]
    assert extra["response.data.key_version"] == 3
    assert "alice@example.com" not in all_strings(row) and "10.20.1.7" not in all_strings(row)


def test_vault_hmac_policy_choices(tokeniser: Tokeniser) -> None:
    entry = {"time": "2026-11-27T08:00:00Z", "type": "request",
             "auth": {"display_name": "hmac-sha256:1234"}, "request": {"id": "r", "path": "kv/data/x"}}
    base = {"format": "auditveil-policy/v1", "columns": {"actor_name": {"tokenise": "usr"}}}
    for choice, check in (("tokenise", lambda v: parse_token(v).domain == "vhm"),  # type: ignore[union-attr]
                          ("keep", lambda v: v == "hmac-sha256:1234"), ("drop", lambda v: v is None)):
        pols = load_policies()
        pols["vault"] = parse_policy({**base, "source": "vault", "vault_hmac": choice}, "p")
        row = Sanitiser(pols, tokeniser).sanitise([Record("vault", entry, "p")]).table.to_pylist()[0]
        assert check(row["actor_name"]), choice


@pytest.mark.parametrize("payload", [
    {"eventName": ["not", "a", "string"], "userIdentity": "not an object", "eventTime": 12},
    {"eventName": {"nested": {"deeper": [1, 2, {"x": None}]}}, "resources": "oops"},
    {"requestParameters": {"encryptionContext": ["a", "b"]}, "readOnly": "true"},
    {"eventTime": "not a time", "sourceIPAddress": 12345, "userIdentity": {"userName": 42}},
    {},
])
def test_odd_shapes_never_crash(sanitiser: Sanitiser, payload: dict[str, Any]) -> None:
    batch = sanitiser.sanitise([Record("cloudtrail", payload, "p")])
    assert batch.table.num_rows + len(batch.rejected) == 1
    if batch.table.num_rows:
        row = batch.table.to_pylist()[0]
        assert row["event_date"] in (NULL_PARTITION,) or len(row["event_date"]) == 10


def test_table_matches_the_schema_and_sample_is_clean(sanitiser: Sanitiser) -> None:
    rnd = random.Random(3)
    when = dt.datetime(2026, 11, 27, tzinfo=dt.UTC)
    recs = [Record("cloudtrail", cloudtrail_event(rnd, when, "111122223333", "eu-west-1"), "p") for _ in range(200)]
    recs += [Record("vault", e, "p") for _ in range(50) for e in vault_entries(rnd, when)]
    batch = sanitiser.sanitise(recs)
    assert batch.table.num_rows == 300 and not batch.rejected
    assert batch.table.schema.names == [*EVENT_SCHEMA.names, "source", "event_date"]
    assert not find_identifiers(all_strings({"rows": batch.table.to_pylist()}))


def test_default_deny_wins_over_vault_hmac_handling(tokeniser: Tokeniser) -> None:
    """A column the policy drops (or does not name) stays null even when its value is Vault-HMAC'd."""
    entry = {"time": "2026-11-27T08:00:00Z", "type": "request", "auth": {"display_name": "hmac-sha256:1234"},
             "request": {"id": "r", "path": "kv/data/x", "remote_address": "hmac-sha256:5678"}}
    pols = load_policies()
    pols["vault"] = parse_policy({"format": "auditveil-policy/v1", "source": "vault", "vault_hmac": "tokenise",
                                  "columns": {"event_id": "keep", "actor_name": "drop"}}, "p")
    batch = Sanitiser(pols, tokeniser).sanitise([Record("vault", entry, "p")])
    row = batch.table.to_pylist()[0]
    assert row["event_id"] == "r:request"
    assert row["actor_name"] is None and row["source_ip"] is None
    assert batch.counts["dropped_fields"] >= 2


@pytest.mark.parametrize("value", ["a-111122223333", "ab-111122223333-cd", "111122223333"])
def test_safety_net_sees_account_ids_in_hex_and_dash_strings(sanitiser: Sanitiser, value: str) -> None:
    row = one(sanitiser, "cloudtrail", dict(KMS_DECRYPT, eventName=value, resources=[{"type": value}]))
    assert parse_token(row["operation"]).domain == "xtr"  # type: ignore[union-attr]
    assert parse_token(row["resources"][0]["type"]).domain == "xtr"  # type: ignore[union-attr]


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"])
def test_times_beyond_the_calendar_are_unparsed_not_fatal(sanitiser: Sanitiser, stamp: str) -> None:
    """Found by the Vault property test: converting these to UTC overflows Python's calendar."""
    batch = sanitiser.sanitise([Record("cloudtrail", dict(KMS_DECRYPT, eventTime=stamp), "p"),
                                Record("cloudtrail", KMS_DECRYPT, "q")])
    assert batch.table.num_rows == 2 and not batch.rejected
    assert batch.counts["unparsed_times"] == 1
    assert batch.table.column("event_date").to_pylist()[0] == NULL_PARTITION


def test_a_record_whose_value_breaks_a_rule_is_rejected_alone(sanitiser: Sanitiser) -> None:
    """Rules run column by column; a value that breaks one marks only its own row."""
    deep: Any = "x"
    for _ in range(300):
        deep = [deep]
    # The principal ARN is tokenised; a list nested beyond orjson's limit cannot become its text.
    bad = dict(KMS_DECRYPT, userIdentity=dict(KMS_DECRYPT["userIdentity"], arn=deep))
    batch = sanitiser.sanitise([Record("cloudtrail", KMS_DECRYPT, "a"), Record("cloudtrail", bad, "b"),
                                Record("cloudtrail", KMS_DECRYPT, "c")])
    assert [(r.error_class, r.position) for r in batch.rejected] == [("normalise", "b")]
    assert batch.table.num_rows == batch.counts["events_out.cloudtrail"] == 2
    assert batch.counts["dead_letters.normalise"] == 1
