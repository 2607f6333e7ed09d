"""The lookup vault: sealed token -> value entries that only the custodians' HSM key can open."""

from pipeline.lookup.envelope import Sealer, WrappedDek, open_sealed
from pipeline.lookup.store import SealedEntry, find_entries, forget_tokens, load_dek, purge_deks, write_entries

__all__ = [
    "SealedEntry", "Sealer", "WrappedDek", "find_entries", "forget_tokens", "load_dek", "open_sealed",
    "purge_deks", "write_entries",
]
