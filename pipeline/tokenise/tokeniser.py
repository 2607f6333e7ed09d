"""Value → token, with a bounded per-worker memo so the HSM sees each distinct value ~once.

The memo lives in worker memory only (never persisted) and is bounded: when full, the oldest
tenth is evicted. Every token minted by a cache miss is also queued as a *new entry* — the
(token, domain, key version, value) the lookup vault must seal — and drained by the caller.

Several tokenisers of one process (the streaming writers, which Prism runs as threads of one
process) can share :class:`SharedTokens`. It holds two kinds of token:

- *minted*: a tokeniser has had the HSM compute it, but its entry may not be written yet.
  Another tokeniser reuses the token without an HSM call, but still queues its own entry, so
  that its output never depends on another writer's flush succeeding;
- *durable*: the entry is written. Another tokeniser hands the token out at once, without an
  HSM call and without a second entry.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
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
    sub: str = ""  # the domain's sub-label (e.g. an encryption-context key); not sealed


_Key = tuple[str, str, str]


def _put_bounded(cache: dict[_Key, str], cap: int, key: _Key, token: str) -> None:
    """Remember ``key`` → ``token`` in ``cache``, which holds at most ``cap`` entries: when full,
    the oldest tenth goes. A cap of 0 remembers nothing."""
    if not cap:
        return
    if len(cache) >= cap:
        for old in list(islice(cache, max(1, cap // 10))):
            del cache[old]
    cache[key] = token


class SharedTokens:
    """Tokens shared by the tokenisers of one process: minted ones and durable ones.

    Each kind is bounded like a tokeniser's memo (the oldest tenth goes when full); in memory
    only. Tokens of one key version only: a tokeniser of another version does not use it."""

    def __init__(self, key_version: int, cache_size: int) -> None:
        self.key_version = key_version
        self._cap = cache_size
        self._minted: dict[_Key, str] = {}
        self._durable: dict[_Key, str] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._minted) + len(self._durable)

    def durable(self, key: _Key) -> str | None:
        return self._durable.get(key)

    def minted(self, key: _Key) -> str | None:
        return self._minted.get(key)

    def add_minted(self, key: _Key, token: str) -> None:
        with self._lock:
            _put_bounded(self._minted, self._cap, key, token)

    def publish(self, entries: Iterable[NewEntry]) -> None:
        """Call only after ``entries`` are written: from then on any tokeniser may reuse them."""
        with self._lock:
            for e in entries:
                if e.key_version != self.key_version:
                    continue
                key = (e.domain, e.sub, e.value)
                self._minted.pop(key, None)
                _put_bounded(self._durable, self._cap, key, e.token)


class Tokeniser:
    def __init__(self, backend: MacBackend, cache_size: int = 500_000, shared: SharedTokens | None = None) -> None:
        self._backend = backend
        self._version = backend.key_version
        self._cap = cache_size
        self._cache: dict[_Key, str] = {}
        self._shared = shared if shared is not None and shared.key_version == self._version else None
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
        if tok is None and self._shared is not None:
            tok = self._shared.durable(k)  # its entry is already durable: nothing to seal
            if tok is not None:
                _put_bounded(self._cache, self._cap, k, tok)
        if tok is not None:
            self.cache_hits += 1
            return tok
        if self._shared is not None and (tok := self._shared.minted(k)) is not None:
            self.cache_hits += 1  # no HSM call; the entry is still this tokeniser's to seal
        else:
            mac = self._backend.mac(canonical_v1(label(domain, sub), value))
            self.hsm_calls += 1
            tok = format_token(domain, self._version, mac)
            if self._shared is not None:
                self._shared.add_minted(k, tok)
        _put_bounded(self._cache, self._cap, k, tok)
        self.pending.append(NewEntry(tok, domain, self._version, value, sub))
        return tok

    def probe(self) -> None:
        """Raise HsmUnavailable unless the HSM still answers (call before each batch)."""
        self._backend.probe()

    def count_hits(self, n: int) -> None:
        """Tokenisations a caller answered from its own memo of this tokeniser's results."""
        self.cache_hits += n

    def entries_written(self, entries: Iterable[NewEntry]) -> None:
        """The caller has written ``entries`` durably: tokenisers sharing this one's
        :class:`SharedTokens` may now hand their tokens out."""
        if self._shared is not None:
            self._shared.publish(entries)

    def drain(self) -> list[NewEntry]:
        out, self.pending = self.pending, []
        return out

    def close(self) -> None:
        self._backend.close()
