"""Build a CloudTrail S3 export tree from the shared fixture files, on the test S3 server.

The fixture files (aws-cloudtrail-processing-library test resources, see NOTICE.md) are
gzipped as CloudTrail delivers them and uploaded under the real layout, for two accounts (one
through an organisation trail), three regions and three days, with hourly digest files and
one Insight file, plus an object outside the layout.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ACCOUNT_A = "111122223333"
ACCOUNT_B = "444455556666"
ORG = "o-exampleorg1"
DAYS = ("2026/04/28", "2026/04/29", "2026/04/30")
REGIONS = ("eu-central-1", "eu-west-1", "us-east-1")
EVENT_FILES = ("SerializerTestFileCompact.json", "SerializerTestFileMissField.json")


@dataclass
class ExportTree:
    bucket: str
    prefix: str
    events: dict[str, bytes] = field(default_factory=dict)  # key -> uploaded bytes
    digests: list[str] = field(default_factory=list)
    insight: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def _name(account: str, region: str, day: str, n: int, suffix: str = "") -> str:
    stamp = day.replace("/", "")
    return f"{account}_CloudTrail{suffix}_{region}_{stamp}T{n:02d}05Z_Ab{n:02d}cdEfGh1JkLm.json.gz"


def build(client: Any, bucket: str, fixtures: Path, prefix: str = "trails/") -> ExportTree:
    tree = ExportTree(bucket, prefix)
    payloads = [gzip.compress((fixtures / f).read_bytes(), mtime=0) for f in EVENT_FILES]

    def put(key: str, body: bytes) -> None:
        client.put_object(Bucket=bucket, Key=key, Body=body)

    for account, base in ((ACCOUNT_A, f"{prefix}AWSLogs/{ACCOUNT_A}/"),
                          (ACCOUNT_B, f"{prefix}AWSLogs/{ORG}/{ACCOUNT_B}/")):
        for region in REGIONS:
            if account == ACCOUNT_B and region == "us-east-1":
                continue
            for day in DAYS:
                for n, body in enumerate(payloads):
                    key = f"{base}CloudTrail/{region}/{day}/{_name(account, region, day, n)}"
                    put(key, body)
                    tree.events[key] = body
                digest = (f"{base}CloudTrail-Digest/{region}/{day}/"
                          f"{_name(account, region, day, 0, '-Digest')}")
                put(digest, gzip.compress(b'{"digestStartTime":"x"}', mtime=0))
                tree.digests.append(digest)
    insight = f"{prefix}AWSLogs/{ACCOUNT_A}/CloudTrail-Insight/eu-central-1/2026/04/29/" \
              f"{_name(ACCOUNT_A, 'eu-central-1', '2026/04/29', 9, '-Insight')}"
    put(insight, payloads[0])
    tree.insight.append(insight)
    outside = f"{prefix}README.txt"
    put(outside, b"not a log file")
    tree.outside.append(outside)
    return tree
