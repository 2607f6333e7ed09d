"""(Re)build the committed seed corpus from the sample generator: ``python -m tests.fuzz.make_corpus``.

Seeds are small and cover every input shape: CloudTrail documents (plain and gzipped), bare
events, EventBridge envelopes, digest files, S3 notifications, Vault request/response lines
(transit, KV, login with metadata, KMIP, Vault-HMAC'd values), arrays, nulls, unknown fields,
numbers where strings belong, and a few malformed lines. Every target reads the same seeds;
fuzzers add what they find to a scratch directory, never here.
"""

from __future__ import annotations

import gzip
import hashlib
import random
import shutil
import tempfile
from pathlib import Path

import orjson

from pipeline.sample.generate import write_sample

CORPUS = Path(__file__).resolve().parent / "corpus"


def _seeds() -> list[bytes]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_sample(root, events=60, seed=7)
        ct_files = sorted(root.glob("AWSLogs/*/CloudTrail/*/*/*/*/*.json.gz"))
        digests = sorted(root.glob("AWSLogs/*/CloudTrail-Digest/*/*/*/*/*.json.gz"))
        records = orjson.loads(gzip.decompress(ct_files[0].read_bytes()))["Records"]
        bare = (root / "eventbridge" / "kms-events.jsonl").read_bytes().splitlines()
        vault = (root / "vault" / "audit.log").read_bytes().splitlines()
        seeds: list[bytes] = [
            orjson.dumps({"Records": records[:2]}),
            orjson.dumps({"Records": records[:1]}, option=orjson.OPT_INDENT_2),
            gzip.compress(orjson.dumps({"Records": records[:1]})),
            gzip.decompress(digests[0].read_bytes())[:2000],
            orjson.dumps(records[:2]),
            b"\n".join(bare[:3]),
            *bare[:4],
            *vault[:10],
            b"\n".join(vault[:4]),
        ]
    rnd = random.Random(7)
    base = records[0]
    seeds += [
        orjson.dumps({**base, "userIdentity": None, "requestParameters": None, "resources": None}),
        orjson.dumps({**base, "eventName": 12, "sourceIPAddress": ["10.0.0.1"], "readOnly": "true"}),
        orjson.dumps({**base, "unknownField": {"nested": {"email": "alice@example.com"}}}),
        orjson.dumps({"detail-type": "AWS API Call via CloudTrail", "source": "aws.kms", "detail": base}),
        orjson.dumps({"Type": "Notification", "Message": "{}"}),
        orjson.dumps({"eventType": "AwsCloudTrailInsight", "insightDetails": {"state": "Start"}, "eventID": "x"}),
        orjson.dumps({"type": "response", "request": {"id": "r", "path": "kmip/scope/s/role/r", "mount_type": "kmip",
                                                      "data": {"operation": "Get"}}, "error": "permission denied"}),
        b'{"eventName":"Decrypt","eventName":"Encrypt"}',
        b'{"Records":[1,"x",null,{"eventName":"Decrypt"}]}',
        b'{"eventName":"Decrypt","x":NaN}',
        b'{"eventName":"Decrypt"}\nnot json\n{"type":"request","request":{"id":"1"}}',
        b"[" * 40 + b"]" * 40,
        bytes(rnd.getrandbits(8) for _ in range(64)),
    ]
    return seeds


def main() -> None:
    seeds = _seeds()
    shutil.rmtree(CORPUS, ignore_errors=True)
    CORPUS.mkdir(parents=True)
    for s in seeds:
        (CORPUS / hashlib.sha1(s, usedforsecurity=False).hexdigest()).write_bytes(s)
    print(f"{len(seeds)} seeds (shared by every target) in {CORPUS}")


if __name__ == "__main__":
    main()
