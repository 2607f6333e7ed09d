"""Value → token, with a bounded per-worker memo so the HSM sees each distinct value ~once.

The memo lives in worker memory only (never persisted) and is bounded: when full, the oldest
tenth is evicted. Every token minted by a cache miss is also queued as a *new entry* — the
(token, domain, key version, value) the lookup vault must seal — and drained by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice

from pipeline.tokenise.backends import MacBackend
from pipeline.tokenise.canonical import canonical_v1
from pipeline.tokenise.domains import label
from pipeline.tokenise.token_format import format_token


@dataclass(frozen=True, slots=True)
class NewEntry:
    token: str
    domain: str
    key_version: int
    value: str


class Tokeniser:
    def __init__(self, backend: MacBackend, cache_size: int = 500_000) -> None:
        self._backend = backend
        self._version = backend.key_version
        self._cap = cache_size
        self._cache: dict[tuple[str, str, str], str] = {}
        self.pending: list[NewEntry] = []
        self.hsm_calls = 0
        self.cache_hits = 0

    @property
    def cache_size(self) -> int:
        return self._cap

    @property
    def key_version(self) -> int:
        return self._version

    def tokenise(self, domain: str, value: str, sub: str = "") -> str:
        # Keyed by (domain, sub, value): the same as (label, value), since a domain has no "/",
        # without building the label on every cache hit.
        k = (domain, sub, value)
        tok = self._cache.get(k)
        if tok is not None:
            self.cache_hits += 1
            return tok
        mac = self._backend.mac(canonical_v1(label(domain, sub), value))
        self.hsm_calls += 1
        tok = format_token(domain, self._version, mac)
        if self._cap:
            if len(self._cache) >= self._cap:
                for old in list(islice(self._cache, max(1, self._cap // 10))):
                    del self._cache[old]
            self._cache[k] = tok
        self.pending.append(NewEntry(tok, domain, self._version, value))
        return tok

    def probe(self) -> None:
        """Raise HsmUnavailable unless the HSM still answers (call before each batch)."""
        self._backend.probe()

    def count_hits(self, n: int) -> None:
        """Tokenisations a caller answered from its own memo of this tokeniser's results."""
        self.cache_hits += n

    def drain(self) -> list[NewEntry]:
        out, self.pending = self.pending, []
        return out

    def close(self) -> None:
        self._backend.close()
