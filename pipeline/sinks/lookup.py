"""Lookup-vault sink: seal the tokens minted by a batch under a fresh DEK and write them."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.lookup.envelope import Sealer
from pipeline.lookup.store import write_entries
from pipeline.storage.fs import Location
from pipeline.tokenise.tokeniser import NewEntry


def write_lookup(lookup: Location, public_key_der: bytes, oaep_hash: str, entries: Sequence[NewEntry],
                 stem: str) -> int:
    if not entries:
        return 0
    return write_entries(lookup, Sealer(public_key_der, oaep_hash), entries, stem)
