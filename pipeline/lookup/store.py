"""The lookup vault on storage: sealed token → value entries and wrapped DEKs.

Layout under the ``--lookup`` location (keep it in another bucket or prefix, with other
credentials, than the analysts' events)::

    entries/part-<batch id>.parquet   token, domain, key_version, dek_id, nonce, ciphertext
    deks/<dek id>.json                one wrapped DEK (see envelope.py)

The same token may appear in several entries (every worker and batch that minted it writes
one); any of them opens to the same value. Writers only ever add files.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pyarrow as pa

from pipeline.lookup.envelope import Sealer, WrappedDek
from pipeline.storage.fs import Location, delete, list_files, read_bytes, write_bytes_atomic, write_parquet_atomic
from pipeline.tokenise.tokeniser import NewEntry

ENTRY_SCHEMA = pa.schema([
    pa.field("token", pa.string(), nullable=False),
    pa.field("domain", pa.string(), nullable=False),
    pa.field("key_version", pa.int16(), nullable=False),
    pa.field("dek_id", pa.string(), nullable=False),
    pa.field("nonce", pa.binary(), nullable=False),
    pa.field("ciphertext", pa.binary(), nullable=False),
], metadata={"auditveil.lookup.format": "1"})


@dataclass(frozen=True)
class SealedEntry:
    token: str
    domain: str
    key_version: int
    dek_id: str
    nonce: bytes
    ciphertext: bytes


def dek_path(loc: Location, dek_id: str) -> str:
    return loc.join("deks", f"{dek_id}.json")


def write_dek(loc: Location, wrapped: WrappedDek) -> None:
    write_bytes_atomic(loc, dek_path(loc, wrapped.dek_id), wrapped.to_json())


def write_entries(loc: Location, sealer: Sealer, entries: Sequence[NewEntry], batch_id: str) -> int:
    """Seal ``entries`` under ``sealer``'s DEK and write them; returns the number written."""
    if not entries:
        return 0
    tokens, domains, versions, nonces, cts = [], [], [], [], []
    for e in entries:
        nonce, ct = sealer.seal(e.value.encode("utf-8", "surrogatepass"), e.token)
        tokens.append(e.token)
        domains.append(e.domain)
        versions.append(e.key_version)
        nonces.append(nonce)
        cts.append(ct)
    table = pa.Table.from_arrays(
        [pa.array(tokens), pa.array(domains), pa.array(versions, pa.int16()),
         pa.array([sealer.dek_id] * len(tokens)), pa.array(nonces, pa.binary()), pa.array(cts, pa.binary())],
        schema=ENTRY_SCHEMA,
    )
    # The DEK first: an entry file whose DEK is missing could never be opened.
    write_dek(loc, sealer.wrapped)
    write_parquet_atomic(loc, loc.join("entries", f"part-{batch_id}.parquet"), table)
    return len(tokens)


def entry_files(loc: Location) -> list[str]:
    return list_files(loc, loc.join("entries"), ".parquet")


def find_entries(loc: Location, tokens: Iterable[str]) -> dict[str, list[SealedEntry]]:
    """Every sealed entry for each of ``tokens`` (tokens with none are absent from the result)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    wanted = pa.array(sorted(set(tokens)), pa.string())
    found: dict[str, list[SealedEntry]] = {}
    for path in entry_files(loc):
        with loc.fs.open_input_file(path) as fh:
            table = pq.read_table(fh)
        hit = table.filter(pc.is_in(table["token"], value_set=wanted))
        for row in hit.to_pylist():
            found.setdefault(row["token"], []).append(SealedEntry(**row))
    return found


def load_dek(loc: Location, dek_id: str) -> WrappedDek | None:
    from pyarrow import fs as pafs

    path = dek_path(loc, dek_id)
    if loc.fs.get_file_info(path).type != pafs.FileType.File:
        return None
    return WrappedDek.from_json(read_bytes(loc, path))


def purge_deks(loc: Location, older_than: dt.timedelta, now: dt.datetime | None = None) -> int:
    """Destroy wrapped DEKs created before ``now - older_than``; returns how many."""
    now = now or dt.datetime.now(dt.UTC)
    cutoff = now - older_than
    purged = 0
    for path in list_files(loc, loc.join("deks"), ".json"):
        wrapped = WrappedDek.from_json(read_bytes(loc, path))
        created = dt.datetime.strptime(wrapped.created_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
        if created < cutoff:
            delete(loc, path)
            purged += 1
    return purged


def forget_tokens(loc: Location, tokens: Iterable[str]) -> int:
    """Remove every entry of ``tokens`` (a data subject's erasure); returns entries removed."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    wanted = pa.array(sorted(set(tokens)), pa.string())
    removed = 0
    for path in entry_files(loc):
        with loc.fs.open_input_file(path) as fh:
            table = pq.read_table(fh)
        mask = pc.is_in(table["token"], value_set=wanted)
        hits = pc.sum(mask).as_py() or 0
        if hits:
            kept = table.filter(pc.invert(mask))
            if kept.num_rows:
                write_parquet_atomic(loc, path, kept)
            else:
                delete(loc, path)
            removed += int(hits)
    return removed
