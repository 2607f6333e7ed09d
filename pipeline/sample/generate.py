"""Realistic sample audit logs for the demo and the tests (deterministic for a seed).

Shapes follow AWS's documented KMS CloudTrail events (Decrypt, Encrypt, GenerateDataKey,
ReEncrypt; IAM users, assumed roles with session issuers, calls made by S3/RDS on a user's
behalf, AccessDenied failures) and HashiCorp Vault audit-device entries (transit
encrypt/decrypt/rewrap with a derivation context, KV v2 reads, userpass/OIDC logins with
e-mail metadata, values HMAC'd by Vault, permission-denied errors, a KMIP operation).
All identifiers are invented; account ids use AWS's documentation range (111122223333…).

Layout written by :func:`write_sample`::

    AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<account>_CloudTrail_<region>_<ts>_<id>.json.gz
    AWSLogs/<account>/CloudTrail-Digest/<region>/YYYY/MM/DD/…_CloudTrail-Digest_….json.gz
    eventbridge/kms-events.jsonl          bare events, one per line, some in EventBridge envelopes
    vault/audit.log                       Vault audit device lines (plus one malformed line)
"""

from __future__ import annotations

import datetime as dt
import gzip
import random
import uuid
from pathlib import Path
from typing import Any

import orjson

ACCOUNTS = ("111122223333", "444455556666")
REGIONS = ("eu-central-1", "eu-west-1")
OPS = ("Decrypt", "Decrypt", "Decrypt", "Encrypt", "GenerateDataKey", "ReEncrypt")
RESOURCE_TYPES = ("health_record", "invoice", "passport_scan", "payroll")


def _uuid(rnd: random.Random) -> str:
    return str(uuid.UUID(int=rnd.getrandbits(128), version=4))


def _key_arn(region: str, account: str, n: int) -> str:
    return f"arn:aws:kms:{region}:{account}:key/{uuid.UUID(int=n * 7919 + 1, version=4)}"


def _identity(rnd: random.Random, account: str) -> dict[str, Any]:
    u = rnd.randrange(40)
    if rnd.random() < 0.5:
        name = f"dev.{u}@example-clinic.eu"
        return {
            "type": "IAMUser", "principalId": f"AIDA{u:016d}", "arn": f"arn:aws:iam::{account}:user/{name}",
            "accountId": account, "accessKeyId": f"AKIA{u:016d}", "userName": name,
        }
    session = f"session-{u}@example-clinic.eu"
    role = rnd.choice(("AppRole", "BillingRole", "Admin"))
    return {
        "type": "AssumedRole", "principalId": f"AROA{u:016d}:{session}",
        "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{session}", "accountId": account,
        "accessKeyId": f"ASIA{u:016d}",
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role", "principalId": f"AROA{u:016d}", "arn": f"arn:aws:iam::{account}:role/{role}",
                "accountId": account, "userName": role,
            },
            "webIdFederationData": {},
            "attributes": {"creationDate": "2026-11-28T08:00:00Z", "mfaAuthenticated": rnd.choice(("true", "false"))},
        },
    }


def cloudtrail_event(rnd: random.Random, when: dt.datetime, account: str, region: str) -> dict[str, Any]:
    op = rnd.choice(OPS)
    ident = _identity(rnd, account)
    key = _key_arn(region, account, rnd.randrange(4))
    customer = f"eu-user-{rnd.randrange(300):07d}"
    via_service = rnd.random() < 0.2
    ctx: dict[str, str] = {"customer_id": customer, "resource_type": rnd.choice(RESOURCE_TYPES)}
    if via_service:
        ident["invokedBy"] = "s3.amazonaws.com"
        ctx = {"aws:s3:arn": f"arn:aws:s3:::patient-docs/{customer}/scan-{rnd.randrange(99)}.pdf"}
    failed = rnd.random() < 0.08
    params: dict[str, Any] = {"encryptionAlgorithm": "SYMMETRIC_DEFAULT"}
    if op == "ReEncrypt":
        params.update({
            "sourceKeyId": key, "destinationKeyId": _key_arn(region, account, 9),
            "sourceEncryptionContext": ctx, "destinationEncryptionContext": ctx,
            "sourceEncryptionAlgorithm": "SYMMETRIC_DEFAULT", "destinationEncryptionAlgorithm": "SYMMETRIC_DEFAULT",
        })
    else:
        params.update({"keyId": key, "encryptionContext": ctx})
        if op == "GenerateDataKey":
            params["keySpec"] = "AES_256"
    ev: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": ident,
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": "kms.amazonaws.com",
        "eventName": op,
        "awsRegion": region,
        "sourceIPAddress": "s3.amazonaws.com" if via_service else f"198.51.100.{rnd.randrange(1, 60)}",
        "userAgent": "s3.amazonaws.com" if via_service else rnd.choice((
            "aws-sdk-java/2.25.11 Linux/6.1.79 OpenJDK_64-Bit_Server_VM/17.0.10 Java/17.0.10",
            "Boto3/1.34.51 md/Botocore#1.34.51 ua/2.0 os/linux#6.1 md/arch#x86_64 lang/python#3.11.7",
            "aws-cli/2.15.22 Python/3.11.6 Linux/6.1.79 exe/x86_64.amzn.2023",
        )),
        "requestParameters": params,
        "responseElements": None,
        "requestID": _uuid(rnd),
        "eventID": _uuid(rnd),
        "readOnly": True,
        "resources": [{"accountId": account, "type": "AWS::KMS::Key", "ARN": key}],
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
        "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                       "clientProvidedHostHeader": f"kms.{region}.amazonaws.com"},
    }
    if via_service:
        ev["userIdentity"]["invokedBy"] = "s3.amazonaws.com"
    if failed:
        ev["errorCode"] = "AccessDenied"
        ev["errorMessage"] = (f"User: {ident['arn']} is not authorized to perform: kms:{op} on resource: {key} "
                              "because no identity-based policy allows the kms:Decrypt action")
    return ev


def _vault_hmac(rnd: random.Random) -> str:
    return "hmac-sha256:" + "".join(rnd.choice("0123456789abcdef") for _ in range(64))


def vault_entries(rnd: random.Random, when: dt.datetime) -> list[dict[str, Any]]:
    """A request entry and its response entry for one Vault operation."""
    who = rnd.randrange(25)
    email = f"analyst{who}@example-bank.eu"
    auth = {
        "client_token": _vault_hmac(rnd), "accessor": _vault_hmac(rnd),
        "display_name": f"oidc-{email}", "policies": ["default", "transit-app"],
        "token_policies": ["default", "transit-app"], "identity_policies": [],
        "metadata": {"email": email, "role": "transit-app", "username": f"analyst{who}"},
        "entity_id": str(uuid.UUID(int=who + 1000, version=4)), "token_type": "service", "token_ttl": 3600,
        "token_issue_time": "2026-11-28T08:00:00Z",
    }
    kind = rnd.random()
    req: dict[str, Any] = {
        "id": _uuid(rnd), "client_id": _uuid(rnd), "client_token": _vault_hmac(rnd),
        "client_token_accessor": _vault_hmac(rnd), "namespace": {"id": "root"},
        "remote_address": f"10.20.{rnd.randrange(4)}.{rnd.randrange(2, 200)}",
        "remote_port": rnd.randrange(30000, 60000),
    }
    response_data: dict[str, Any] = {}
    error = None
    customer = f"eu-user-{rnd.randrange(300):07d}"
    if kind < 0.55:
        verb = rnd.choice(("encrypt", "decrypt", "rewrap"))
        req.update({"operation": "update", "mount_type": "transit", "mount_point": "transit/",
                    "path": f"transit/{verb}/customer-records",
                    "data": {"plaintext" if verb == "encrypt" else "ciphertext": _vault_hmac(rnd),
                             "context": customer if rnd.random() < 0.5 else _vault_hmac(rnd)}})
        response_data = {"ciphertext": _vault_hmac(rnd), "key_version": 3}
    elif kind < 0.8:
        req.update({"operation": "read", "mount_type": "kv", "mount_point": "secret/",
                    "path": f"secret/data/customers/{customer}"})
        response_data = {"data": _vault_hmac(rnd)}
    elif kind < 0.93:
        req.update({"operation": "update", "mount_type": "userpass", "mount_point": "auth/userpass/",
                    "path": f"auth/userpass/login/analyst{who}", "data": {"password": _vault_hmac(rnd)}})
    else:
        req.update({"operation": "update", "mount_type": "kmip", "mount_point": "kmip/",
                    "path": "kmip/scope/finance/role/hsm-client/credential/generate",
                    "data": {"operation": "Encrypt"}})
    if rnd.random() < 0.07:
        error = "1 error occurred:\n\t* permission denied\n\n"
    t = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{rnd.randrange(10**9):09d}Z"
    request_entry = {"time": t, "type": "request", "auth": auth, "request": req}
    response_entry: dict[str, Any] = {"time": t, "type": "response", "auth": auth, "request": req,
                                      "response": {"mount_point": req["mount_point"], "mount_type": req["mount_type"],
                                                   "data": response_data}}
    if error:
        request_entry["error"] = error
        response_entry["error"] = error
    return [request_entry, response_entry]


def write_sample(root: Path, events: int = 600, seed: int = 42) -> dict[str, int]:
    """Write the sample tree under ``root``; returns counts of what was written."""
    rnd = random.Random(seed)
    start = dt.datetime(2026, 11, 27, 8, 0, tzinfo=dt.UTC)
    counts = {"cloudtrail_events": 0, "bare_events": 0, "vault_entries": 0, "digests": 0, "malformed": 1}
    per_file = max(1, events // 8)
    n = 0
    for account in ACCOUNTS:
        for region in REGIONS:
            for day in (0, 1):
                when = start + dt.timedelta(days=day)
                recs = [cloudtrail_event(rnd, when + dt.timedelta(seconds=7 * i), account, region)
                        for i in range(per_file)]
                d = root / "AWSLogs" / account / "CloudTrail" / region / when.strftime("%Y/%m/%d")
                d.mkdir(parents=True, exist_ok=True)
                stamp = when.strftime("%Y%m%dT%H%MZ")
                name = f"{account}_CloudTrail_{region}_{stamp}_{n:04d}abcd.json.gz"
                (d / name).write_bytes(gzip.compress(orjson.dumps({"Records": recs}), mtime=0))
                counts["cloudtrail_events"] += len(recs)
                n += 1
                dd = root / "AWSLogs" / account / "CloudTrail-Digest" / region / when.strftime("%Y/%m/%d")
                dd.mkdir(parents=True, exist_ok=True)
                digest = {"awsAccountId": account, "digestStartTime": when.isoformat(),
                          "digestEndTime": when.isoformat(),
                          "digestS3Bucket": "audit-trail", "digestPublicKeyFingerprint": "0" * 32, "logFiles": []}
                (dd / f"{account}_CloudTrail-Digest_{region}_{stamp}.json.gz").write_bytes(
                    gzip.compress(orjson.dumps(digest), mtime=0))
                counts["digests"] += 1
    eb = root / "eventbridge"
    eb.mkdir(parents=True, exist_ok=True)
    with open(eb / "kms-events.jsonl", "wb") as fh:
        for i in range(events // 4):
            ev = cloudtrail_event(rnd, start + dt.timedelta(minutes=i), ACCOUNTS[0], REGIONS[0])
            if i % 3 == 0:
                ev = {"version": "0", "id": _uuid(rnd), "detail-type": "AWS API Call via CloudTrail",
                      "source": "aws.kms", "account": ACCOUNTS[0], "time": ev["eventTime"], "region": REGIONS[0],
                      "resources": [], "detail": ev}
            fh.write(orjson.dumps(ev) + b"\n")
            counts["bare_events"] += 1
    vd = root / "vault"
    vd.mkdir(parents=True, exist_ok=True)
    with open(vd / "audit.log", "wb") as fh:
        for i in range(events // 4):
            for entry in vault_entries(rnd, start + dt.timedelta(seconds=30 * i)):
                fh.write(orjson.dumps(entry) + b"\n")
                counts["vault_entries"] += 1
            if i == 3:
                fh.write(b'{"time": "2026-11-27T08:01:30Z", "type": "request", "auth": {"display_name": \n')
    return counts
