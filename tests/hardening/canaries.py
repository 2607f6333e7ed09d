"""Canary identifiers: plant unique values in every field of every input shape, then look for
them in every byte a run produced.

Two kinds of canary:

* identifier-shaped (an e-mail, an IPv4/IPv6 address, an account-bearing ARN, an AKIA key, a
  12-digit account id), each unique to one planting. They go everywhere, including fields the
  policy keeps in clear (``eventName``, ``awsRegion``…), where the sanitiser's safety net must
  tokenise them.
* plain (``cnryp`` + hex), in every field the policy tokenises, generalises away or drops (and
  unknown fields, map values, error messages). Fields the policy keeps in clear by design
  (event names, regions, Vault mount names, transit key names, map *key* names that look like
  schema names) legitimately keep plain text, so they only get identifier-shaped canaries.

Every canary has a distinctive marker (the whole plain value; the unique local part of an
e-mail; the account digits and the unique user name of an ARN; the key body; the address) and a
hit on any marker, anywhere, is a leak.
"""

from __future__ import annotations

import gzip
import io
import itertools
import os
import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from pipeline.scan.patterns import find_identifiers
from pipeline.scan.scanner import parquet_strings

IDENT_KINDS = ("email", "ipv4", "arn", "akid", "account", "ipv6")


@dataclass
class Canaries:
    """A registry of planted canaries and their markers."""

    markers: set[str] = field(default_factory=set)
    planted: int = 0
    _kinds: Iterator[str] = field(default_factory=lambda: itertools.cycle(IDENT_KINDS))
    _ips: set[str] = field(default_factory=set)

    def _hex(self, n: int = 10) -> str:
        return secrets.token_hex(n // 2 + 1)[:n]

    def _account(self) -> str:
        while True:
            acct = f"{secrets.randbelow(9 * 10**11) + 10**11:012d}"
            if acct not in self.markers:
                return acct

    def plain(self) -> str:
        value = f"cnryp{self._hex(12)}"
        self.markers.add(value)
        self.planted += 1
        return value

    def ident(self, kind: str | None = None) -> str:
        kind = kind or next(self._kinds)
        self.planted += 1
        if kind == "email":
            local = f"cnrye{self._hex(10)}"
            self.markers.add(local)
            return f"{local}@canary-{self._hex(6)}.eu"
        if kind == "ipv4":
            while True:
                ip = f"{secrets.choice((198, 203))}.{secrets.randbelow(200) + 20}.{secrets.randbelow(250) + 2}." \
                     f"{secrets.randbelow(250) + 2}"
                if ip not in self._ips:
                    break
            self._ips.add(ip)
            self.markers.add(ip)
            return ip
        if kind == "ipv6":
            ip = f"2001:db8:{self._hex(4)}:{self._hex(4)}::{self._hex(3)}"
            self.markers.add(ip)
            return ip
        if kind == "arn":
            acct, name = self._account(), f"cnrya{self._hex(10)}"
            self.markers.update((acct, name))
            return f"arn:aws:iam::{acct}:user/{name}"
        if kind == "akid":
            body = "".join(secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16))
            self.markers.add("AKIA" + body)
            return "AKIA" + body
        if kind == "account":
            acct = self._account()
            self.markers.add(acct)
            return acct
        raise ValueError(kind)

    def any(self, i: int) -> str:
        """Alternate plain and identifier-shaped canaries for a field the policy does not keep."""
        return self.plain() if i % 2 == 0 else self.ident()

    # -- search ----------------------------------------------------------------------------------

    def regex(self) -> re.Pattern[str]:
        return re.compile("|".join(re.escape(m) for m in sorted(self.markers, key=len, reverse=True)))


def _t(day: int, sec: int) -> str:
    return f"2026-11-{day:02d}T{8 + sec // 3600:02d}:{(sec // 60) % 60:02d}:{sec % 60:02d}Z"


# -- CloudTrail -----------------------------------------------------------------------------------

def cloudtrail_event(c: Canaries, i: int, *, account: str) -> dict[str, Any]:
    """A KMS CloudTrail event with a canary in every field (kept fields: identifier-shaped only)."""
    key_uuid = f"{secrets.token_hex(4)}-1234-4abc-8def-{secrets.token_hex(6)}"
    ctx_kept = c.ident()  # resource_type is a keep_values_of key: safety net only
    return {
        "eventVersion": c.ident() if i % 3 == 0 else "1.08",
        "userIdentity": {
            "type": c.ident() if i % 2 else "AssumedRole",
            "principalId": f"AROA{secrets.token_hex(8).upper()}:{c.any(i)}",
            "arn": c.ident("arn") if i % 2 else f"arn:aws:sts::{account}:assumed-role/Role/{c.plain()}",
            "accountId": account,
            "accessKeyId": c.ident("akid") if i % 2 else c.plain(),
            "userName": c.any(i + 1),
            "invokedBy": c.ident(),
            "sessionContext": {
                "sessionIssuer": {"type": c.ident(), "principalId": c.any(i), "arn": c.ident("arn"),
                                  "accountId": c.ident("account"), "userName": c.any(i + 1)},
                "webIdFederationData": {"federatedProvider": c.any(i), "attributes": {c.ident("email"): c.any(i)}},
                "attributes": {"creationDate": c.ident(), "mfaAuthenticated": c.ident(),
                               "unknownAttr": c.any(i)},
                "sourceIdentity": c.any(i + 1),
                "ec2RoleDelivery": c.any(i),
            },
            "onBehalfOf": {"userId": c.any(i), "identityStoreArn": c.ident("arn")},
        },
        "eventTime": _t(27 + i % 2, i),
        "eventSource": c.ident() if i % 4 == 1 else "kms.amazonaws.com",
        "eventName": c.ident() if i % 4 == 2 else "Decrypt",
        "awsRegion": c.ident() if i % 4 == 3 else "eu-central-1",
        "sourceIPAddress": c.ident(("ipv4", "ipv6", "email")[i % 3]) if i % 2 else c.plain(),
        "userAgent": (f"aws-sdk-java/2.20.0 {c.any(i)} Linux/{c.ident()}" if i % 3 == 0
                      else c.ident() if i % 3 == 1 else f"{c.plain()} {c.ident()}"),
        "errorCode": c.ident() if i % 5 == 0 else None,
        "errorMessage": f"User: {c.ident('arn')} is not authorized {c.plain()} from {c.ident('ipv4')}",
        "requestParameters": {
            "encryptionContext": {
                "customer_id": c.any(i), "resource_type": ctx_kept, c.ident("email"): c.any(i + 1),
                "aws:s3:arn": c.ident("arn"), "nested": {"deep": c.any(i)}, "n": 12,
            },
            "keyId": (f"arn:aws:kms:eu-central-1:{c.ident('account')}:key/{key_uuid}" if i % 2
                      else c.any(i)),
            "encryptionAlgorithm": c.ident() if i % 2 else "SYMMETRIC_DEFAULT",
            "grantTokens": [c.any(i), c.ident()],
            "sourceKeyId": f"arn:aws:kms:eu-west-1:{c.ident('account')}:key/{key_uuid}",
            "destinationKeyId": c.any(i + 1),
            "sourceEncryptionContext": {"customer_id": c.any(i), c.ident("email"): c.ident()},
            "destinationEncryptionContext": {"customer_id": c.any(i + 1)},
            "unknownParameter": {"inner": [c.any(i), {"x": c.any(i + 1)}]},
        },
        "responseElements": {"keyId": f"arn:aws:kms:eu-central-1:{c.ident('account')}:key/{key_uuid}",
                             "encryptionAlgorithm": c.ident(), "plaintext": c.any(i), "ciphertextBlob": c.any(i)},
        "additionalEventData": {"keyMaterialId": c.ident(), "unknown": c.any(i)},
        "requestID": c.ident() if i % 2 else f"{secrets.token_hex(4)}-0000-4000-8000-{secrets.token_hex(6)}",
        "eventID": f"{secrets.token_hex(4)}-0000-4000-8000-{secrets.token_hex(6)}" if i % 3 else c.ident(),
        "readOnly": c.ident() if i % 7 == 0 else True,
        "resources": [
            {"accountId": c.ident("account"), "type": c.ident() if i % 2 else "AWS::KMS::Key",
             "ARN": f"arn:aws:kms:eu-central-1:{c.ident('account')}:key/{key_uuid}"},
            {"accountId": c.any(i), "type": "AWS::S3::Object", "ARN": c.any(i + 1)},
        ],
        "eventType": c.ident() if i % 6 == 0 else "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": c.ident("account") if i % 2 else c.plain(),
        "eventCategory": c.ident() if i % 2 else "Management",
        "tlsDetails": {"tlsVersion": c.ident(), "cipherSuite": "TLS_AES_128_GCM_SHA256",
                       "clientProvidedHostHeader": c.any(i)},
        "sessionCredentialFromConsole": c.ident() if i % 2 else "true",
        "vpcEndpointId": c.any(i),
        "unknownTopLevel": {"a": {"b": {"c": [c.any(i), [c.any(i + 1)]]}}, c.ident("email"): c.any(i)},
        c.ident("email"): c.any(i + 1),
    }


def insight_event(c: Canaries, i: int) -> dict[str, Any]:
    return {
        "eventVersion": "1.08", "eventTime": _t(27, 500 + i), "awsRegion": "eu-central-1",
        "eventID": f"{secrets.token_hex(4)}-0000-4000-8000-{secrets.token_hex(6)}",
        "eventType": "AwsCloudTrailInsight", "recipientAccountId": c.ident("account"),
        "sharedEventID": c.any(i), "eventCategory": "Insight",
        "insightDetails": {
            "state": "Start", "eventSource": "kms.amazonaws.com", "eventName": c.ident(),
            "insightType": "ApiCallRateInsight",
            "insightContext": {"statistics": {"baseline": {"average": c.ident()}, c.ident("email"): c.ident(),
                                              "insightDuration": 1},
                               "attributions": [{"attribute": "userIdentityArn",
                                                 "insight": [{"value": c.ident("arn"), "average": 1}]}]},
        },
    }


def eventbridge_envelope(c: Canaries, event: dict[str, Any], account: str) -> dict[str, Any]:
    return {"version": "0", "id": c.any(1), "detail-type": "AWS API Call via CloudTrail", "source": "aws.kms",
            "account": account, "time": event["eventTime"], "region": "eu-central-1",
            "resources": [c.ident("arn"), c.plain()], "detail": event}


# -- Vault / OpenBao ------------------------------------------------------------------------------

def _hmac(c: Canaries, i: int) -> str:
    return f"hmac-sha256:{c.any(i)}"


def vault_entries(c: Canaries, i: int) -> list[dict[str, Any]]:
    """A request/response pair (transit, KV, login, KMIP, sys) with canaries everywhere.

    Kept in clear by design, so no plain canaries there: the mount (first path segment) and the
    verb, the transit key name, ``type``, ``operation``, ``mount_type``, token type, policies.
    """
    req_id = f"{secrets.token_hex(4)}-0000-4000-8000-{secrets.token_hex(6)}" if i % 3 else c.ident()
    kind = i % 5
    if kind == 0:
        path, mount_type, op = "transit/encrypt/orders", "transit", "update"
        data: dict[str, Any] = {"plaintext": _hmac(c, i), "context": c.any(i),
                                "batch_input": [{"context": c.any(i + 1), "plaintext": c.any(i)}],
                                "key_version": c.ident()}
    elif kind == 1:
        path, mount_type, op = f"secret/data/customers/{c.any(i)}/{c.ident('email')}", "kv", "read"
        data = {"version": c.any(i)}
    elif kind == 2:
        path, mount_type, op = f"auth/userpass/login/{c.ident('email') if i % 2 else c.plain()}", "userpass", "update"
        data = {"password": _hmac(c, i), "username": c.any(i)}
    elif kind == 3:
        # KMIP scope and role names are kept by the policy (operator-chosen, like mount names).
        path, mount_type, op = "kmip/scope/finance/role/hsm-client", "kmip", "update"
        data = {"operation": c.ident(("ipv4", "account")[i % 2]), "uniqueIdentifier": c.any(i)}
    else:
        # A dotted identifier as mount type ends up glued into "<mount type>.<operation>".
        path, mount_type, op = f"sys/policies/acl/{c.any(i)}", c.ident(("ipv4", "account")[i % 2]), "read"
        data = {c.ident("email"): c.any(i)}
    auth = {
        "client_token": _hmac(c, i), "accessor": _hmac(c, i + 1), "display_name": c.any(i),
        "policies": ["default", c.ident()], "token_policies": [c.ident()], "identity_policies": [c.ident()],
        "metadata": {"email": c.ident("email"), "username": c.any(i), "role": c.ident(),
                     c.ident("email"): c.any(i + 1), "org": c.any(i)},
        "entity_id": c.any(i + 1), "token_type": c.ident() if i % 4 == 0 else "service",
        "token_ttl": 2764800, "policy_results": {"allowed": True, "granting_policies": [{"name": c.any(i)}]},
    }
    request = {
        "id": req_id, "client_id": c.any(i), "operation": c.ident() if i % 7 == 3 else op,
        "mount_point": f"{c.any(i)}/", "mount_type": mount_type, "mount_accessor": c.any(i + 1),
        "mount_running_version": c.ident(), "mount_class": c.ident(), "client_token": _hmac(c, i),
        "client_token_accessor": _hmac(c, i + 1), "namespace": {"id": c.ident(), "path": c.any(i)},
        "path": path, "data": data,
        "remote_address": c.ident(("ipv4", "ipv6")[i % 2]) if i % 3 else c.plain(),
        "remote_port": 40000 + i,
        "headers": {"user-agent": [f"vault-go/1.15 {c.any(i)}" if i % 2 else c.ident()],
                    "x-forwarded-for": [c.ident("ipv4"), c.plain()], c.ident("email"): [c.any(i)]},
    }
    entries = [{"time": _t(27 + i % 2, 1000 + i), "type": "request", "auth": auth, "request": request,
                "unknownTop": {"nested": {c.ident("email"): [c.any(i)]}}}]
    response_data: dict[str, Any] = {"ciphertext": f"vault:v1:{c.any(i)}", "key_version": c.ident(),
                                     "secret": {c.plain(): c.ident()}}
    entries.append({
        "time": f"2026-11-{27 + i % 2:02d}T09:00:00.123456789Z", "type": "response", "auth": auth, "request": request,
        "response": {"mount_type": c.ident(), "data": response_data, "warnings": [c.any(i)],
                     "auth": {"client_token": _hmac(c, i), "metadata": {"email": c.ident("email")}}},
        "error": (f"1 error occurred:\n\t* permission denied on {c.any(i)} for {c.ident('email')}"
                  if i % 2 else ""),
    })
    return entries


# -- inputs ---------------------------------------------------------------------------------------

@dataclass
class Scenario:
    root: Path
    canaries: Canaries
    events: int = 0  # records that must come out as rows
    dead_letters: int = 0  # inputs that must come out as dead letters (at least)
    digests: int = 0


def _gz(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data))


def write_inputs(root: Path, c: Canaries, n: int = 12) -> Scenario:
    """Every supported input shape, canaries everywhere, plus malformed input of every kind."""
    sc = Scenario(root, c)
    account = c.ident("account")  # also in the file paths, as in the S3 export layout
    base = root / "AWSLogs" / account
    # 1. CloudTrail export layout, gzipped {"Records": [...]}, incl. a null-heavy and an Insight event.
    records = [cloudtrail_event(c, i, account=account) for i in range(n)]
    records.append({"eventVersion": "1.08", "eventTime": _t(27, 900), "eventName": "Decrypt",
                    "eventSource": "kms.amazonaws.com", "userIdentity": None, "requestParameters": None,
                    "sourceIPAddress": None, "resources": None, "userAgent": c.plain(), "eventID": c.ident()})
    records += [insight_event(c, i) for i in range(2)]
    name = f"{account}_CloudTrail_eu-central-1_20261127T0800Z_0000abcd.json.gz"
    _gz(base / "CloudTrail" / "eu-central-1" / "2026" / "11" / "27" / name, orjson.dumps({"Records": records}))
    sc.events += len(records)
    # A Records element that is not an object: one dead letter.
    _gz(base / "CloudTrail" / "eu-west-1" / "2026" / "11" / "27" / f"{account}_CloudTrail_x.json.gz",
        orjson.dumps({"Records": [cloudtrail_event(c, 99, account=account), c.ident("email"), [c.plain()]]}))
    sc.events += 1
    sc.dead_letters += 2
    # 2. Digest file (recognised by path and skipped) with canaries.
    _gz(base / "CloudTrail-Digest" / "eu-central-1" / "2026" / "11" / "27" / f"{account}_CloudTrail-Digest_x.json.gz",
        orjson.dumps({"awsAccountId": account, "digestStartTime": _t(27, 0), "digestEndTime": _t(27, 1),
                      "digestS3Bucket": c.plain(), "logFiles": [{"s3Object": c.plain(), "hashValue": c.plain()}],
                      "digestPublicKeyFingerprint": c.plain()}))
    sc.digests += 1
    # 3. Bare events, one per line, some in EventBridge envelopes, one pretty-printed document.
    bare = [cloudtrail_event(c, 100 + i, account=account) for i in range(n)]
    lines = [orjson.dumps(eventbridge_envelope(c, e, account) if k % 2 else e) for k, e in enumerate(bare)]
    (root / "eventbridge").mkdir()
    (root / "eventbridge" / "kms-events.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    sc.events += len(bare)
    (root / "eventbridge" / "pretty.json").write_bytes(
        orjson.dumps({"Records": [cloudtrail_event(c, 300, account=account)]}, option=orjson.OPT_INDENT_2))
    sc.events += 1
    (root / "eventbridge" / "array.json").write_bytes(
        orjson.dumps([cloudtrail_event(c, 301, account=account), cloudtrail_event(c, 302, account=account)]))
    sc.events += 2
    # 4. Vault / OpenBao audit device lines.
    vault = [e for i in range(n) for e in vault_entries(c, i)]
    (root / "vault").mkdir()
    (root / "vault" / "audit.log").write_bytes(b"\n".join(orjson.dumps(e) for e in vault) + b"\n")
    sc.events += len(vault)
    # 5. Malformed input of every kind, each carrying canaries.
    bad = root / "malformed"
    bad.mkdir()
    good_first = orjson.dumps(cloudtrail_event(c, 400, account=account))
    sc.events += 1
    broken_lines = [
        b'{"eventName": "Decrypt", "userIdentity": {"arn": "' + c.ident("arn").encode() + b'"',  # truncated
        b"not json at all " + c.ident("email").encode() + b" " + c.plain().encode(),
        b'{"eventName": "' + c.plain().encode() + b'", "x": NaN}',
        b'{"eventName": "\xff\xfe' + c.plain().encode() + b'"}',  # invalid UTF-8
        b'{"eventName": "x", "deep": ' + b"[" * 80 + c.ident("ipv4").encode().join((b'"', b'"')) + b"]" * 80 + b"}",
        b'"' + c.plain().encode() + b'"',  # a JSON string, not an object
        orjson.dumps({"neither": c.ident("email"), "cloudtrail": c.plain(), "nor": "vault"}),
    ]
    (bad / "broken.jsonl").write_bytes(b"\n".join([good_first, *broken_lines]) + b"\n")
    sc.dead_letters += len(broken_lines)
    (bad / f"{account}_truncated.json.gz").write_bytes(gzip.compress(orjson.dumps({"Records": [
        cloudtrail_event(c, 500, account=account)]}))[:-40])
    sc.dead_letters += 1
    not_json = b"garbage " + c.ident("email").encode() + b"\n" + c.plain().encode() + b"\n"
    (bad / f"not-json-from-{c.ident('email')}.log").write_bytes(not_json)
    sc.dead_letters += 1
    (bad / "records-not-list.json").write_bytes(orjson.dumps({"Records": {c.plain(): c.ident("arn")}}))
    sc.dead_letters += 1
    (bad / "bomb.json.gz").write_bytes(gzip.compress(b'{"Records": ["' + c.plain().encode() + b" " * (3 << 20)
                                                     + b'"]}', compresslevel=9))
    sc.dead_letters += 1
    return sc


# -- searching the output -------------------------------------------------------------------------

@dataclass
class Hit:
    where: str
    what: str  # "canary" or an identifier pattern name; never the matched text


def _texts_of(path: Path) -> Iterable[tuple[str, str]]:
    data = path.read_bytes()
    yield "bytes", data.decode("latin-1")
    if path.suffix == ".parquet":
        for column, text in parquet_strings(data):
            yield f"column {column}", text
    else:
        yield "text", data.decode("utf-8", "replace")


def search_tree(c: Canaries, root: Path, *, shapes: bool = True) -> list[Hit]:
    """Every canary marker (and, with ``shapes``, every identifier shape) in every file under
    ``root``: Parquet decoded cell by cell and as raw bytes, other files as text; file names too."""
    rx = c.regex()
    hits: list[Hit] = []
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            path = Path(dirpath) / f
            rel = str(path.relative_to(root))
            if rx.search(rel):
                hits.append(Hit(rel, "canary in a file name"))
            for where, text in _texts_of(path):
                if rx.search(text):
                    hits.append(Hit(f"{rel} {where}", "canary"))
                if shapes and where != "bytes":
                    hits.extend(Hit(f"{rel} {where}", kind) for kind, _ in find_identifiers(text))
    return hits


def search_text(c: Canaries, where: str, text: str, *, shapes: bool = True) -> list[Hit]:
    hits = [Hit(where, "canary")] if c.regex().search(text) else []
    if shapes:
        hits.extend(Hit(where, kind) for kind, _ in find_identifiers(text))
    return hits


def parquet_rows(root: Path) -> int:
    import pyarrow.parquet as pq

    return sum(pq.read_metadata(io.BytesIO(p.read_bytes())).num_rows for p in root.rglob("*.parquet")
               if "_dead_letters" not in p.parts)
