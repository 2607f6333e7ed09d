"""Dead letters: what could not be processed, sealed for the custodians, counted for operators.

Written beside the events under ``<out>/_dead_letters/part-<batch stem>.parquet`` (readers of
the dataset skip ``_``-prefixed folders). Operators see the error class, the source kind, a
redacted position and the size; the raw bytes are AES-256-GCM-sealed under a fresh DEK wrapped
for the custodians (DEK stored in the lookup location), with the dead-letter id as associated
data. Nothing in clear can carry an identifier.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pyarrow as pa

from pipeline.lookup.envelope import Sealer
from pipeline.lookup.store import write_dek
from pipeline.sources.records import Rejected
from pipeline.storage.fs import Location, write_parquet_atomic

DEAD_LETTER_DIR = "_dead_letters"

DEAD_LETTER_SCHEMA = pa.schema([
    pa.field("dead_letter_id", pa.string(), nullable=False),
    pa.field("error_class", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
    pa.field("position", pa.string(), nullable=False),
    pa.field("raw_bytes", pa.int64(), nullable=False),
    pa.field("dek_id", pa.string(), nullable=False),
    pa.field("nonce", pa.binary(), nullable=False),
    pa.field("ciphertext", pa.binary(), nullable=False),
    pa.field("recorded_at", pa.timestamp("s", tz="UTC"), nullable=False),
], metadata={"auditveil.dead_letter.format": "1"})


def write_dead_letters(out: Location, lookup: Location, public_key_der: bytes, oaep_hash: str,
                       rejected: Sequence[Rejected], stem: str) -> int:
    if not rejected:
        return 0
    sealer = Sealer(public_key_der, oaep_hash)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    ids, classes, sources, positions, sizes, nonces, cts = [], [], [], [], [], [], []
    for i, r in enumerate(rejected):
        dl_id = f"{stem}-{i:06d}"
        nonce, ct = sealer.seal(r.raw, dl_id)
        ids.append(dl_id)
        classes.append(r.error_class)
        sources.append(r.source)
        positions.append(r.position)
        sizes.append(len(r.raw))
        nonces.append(nonce)
        cts.append(ct)
    n = len(ids)
    table = pa.Table.from_arrays(
        [pa.array(ids), pa.array(classes), pa.array(sources), pa.array(positions),
         pa.array(sizes, pa.int64()), pa.array([sealer.dek_id] * n), pa.array(nonces, pa.binary()),
         pa.array(cts, pa.binary()), pa.array([now] * n, pa.timestamp("s", tz="UTC"))],
        schema=DEAD_LETTER_SCHEMA,
    )
    write_dek(lookup, sealer.wrapped)
    write_parquet_atomic(out, out.join(DEAD_LETTER_DIR, f"part-{stem}.parquet"), table)
    return n
