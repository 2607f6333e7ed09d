"""Synthetic pseudonymised events in the real schema, written as the sink writes them."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import random
from typing import Any

import pyarrow as pa

from pipeline.schema import EVENT_SCHEMA
from pipeline.storage import fs


def token(domain: str, value: str) -> str:
    mac = hashlib.sha256(f"{domain}:{value}".encode()).digest()[:16]
    body = base64.b32encode(mac).decode().rstrip("=").lower()
    return f"{domain}.k1.{body}"


def make_events(n: int, day: str, seed: int = 0, start_id: int = 0) -> pa.Table:
    rnd = random.Random(seed)
    base = dt.datetime.fromisoformat(f"{day}T00:00:00+00:00")
    rows: list[dict[str, Any]] = []
    for i in range(n):
        user = rnd.randrange(5)
        failed = rnd.random() < 0.1
        rows.append({
            "event_id": f"ev-{day}-{start_id + i:08d}",
            "event_time": base + dt.timedelta(seconds=rnd.randrange(86_400)),
            "service": "kms.amazonaws.com",
            "operation": rnd.choice(["Decrypt", "Decrypt", "Encrypt", "GenerateDataKey"]),
            "outcome": "failure" if failed else "success",
            "error_code": "AccessDenied" if failed else None,
            "region": "eu-central-1",
            "key_ref": "arn:aws:kms:eu-central-1:acct.k1.aaaaaaaaaaaaaaaaaaaaaaaaaa:key/k1",
            "actor_type": "IAMUser",
            "actor_id": token("pid", str(user)),
            "actor_arn": token("prn", str(user)),
            "actor_name": token("usr", str(user)),
            "actor_account": token("acct", "1"),
            "actor_access_key": token("akid", str(user)),
            "actor_attributes": None,
            "source_ip": token("ip", str(rnd.randrange(3) if rnd.random() < 0.98 else 99 + user)),
            "user_agent": "aws-sdk-java/2.20.0",
            "encryption_context": [("resource_type", rnd.choice(["health_record", "invoice"])),
                                   ("customer_id", token("ctx", str(rnd.randrange(100))))],
            "request_id": f"req-{i}",
            "read_only": True,
            "resources": [{"type": "AWS::KMS::Key", "ref": "arn:aws:kms:eu-central-1:acct:key/k1"}],
            "recipient_account": token("acct", "1"),
            "event_type": "AwsApiCall",
            "extra": None,
        })
    return pa.Table.from_pylist(rows, schema=EVENT_SCHEMA)


def write_partition(loc: fs.Location, source: str, day: str, files: int, rows_per_file: int,
                    seed: int = 0) -> int:
    """Write ``files`` small files into one partition as the events sink does; returns rows."""
    total = 0
    for f in range(files):
        first = f * rows_per_file + seed * 10**6
        table = make_events(rows_per_file, day, seed=seed * 1000 + f, start_id=first)
        name = f"part-{seed:03d}{f:05d}.parquet"
        fs.write_parquet_atomic(loc, loc.join(f"source={source}", f"event_date={day}", name), table)
        total += table.num_rows
    return total
