"""Generate a Vault/OpenBao audit-device log (JSON lines) for the benchmark.

Reuses the realistic entries of ``pipeline.sample.generate.vault_entries``: transit
encrypt/decrypt/rewrap with a derivation context, KV v2 reads of per-customer paths,
userpass logins, KMIP operations, permission-denied errors, request and response entries
sharing a request id, values HMAC'd by Vault. Most of those HMAC'd values are unique per
request (as in a real audit device), so a Vault workload mints far more tokens per event than
CloudTrail does. Deterministic for a seed.

Usage: python -m bench.gen_vault N OUT.jsonl [--seed S]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random

import orjson

from pipeline.sample.generate import vault_entries


def write_vault(n: int, path: str, seed: int = 11) -> int:
    """Write at least ``n`` entries (request/response pairs) to ``path``; returns how many."""
    rnd = random.Random(seed)
    start = dt.datetime(2026, 4, 29, 9, 0, tzinfo=dt.UTC)
    written = 0
    with open(path, "wb") as fh:
        i = 0
        while written < n:
            for entry in vault_entries(rnd, start + dt.timedelta(milliseconds=20 * i)):
                fh.write(orjson.dumps(entry) + b"\n")
                written += 1
            i += 1
    return written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("n", type=int)
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=11)
    a = ap.parse_args()
    print(write_vault(a.n, a.out, a.seed))


if __name__ == "__main__":
    main()
