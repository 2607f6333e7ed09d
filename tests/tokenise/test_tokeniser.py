from __future__ import annotations

import pickle

import pytest

from pipeline.errors import ConfigError
from pipeline.tokenise import LocalMacBackend, Tokeniser, parse_token
from pipeline.tokenise.backends import LOCAL_KEY_OPT_IN


@pytest.fixture()
def local_key(monkeypatch: pytest.MonkeyPatch) -> LocalMacBackend:
    monkeypatch.setenv("AUDITVEIL_INSECURE_LOCAL_KEY", LOCAL_KEY_OPT_IN)
    return LocalMacBackend(bytes(range(32)))


def test_local_backend_refuses_without_opt_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUDITVEIL_INSECURE_LOCAL_KEY", raising=False)
    with pytest.raises(ConfigError, match="unit tests only"):
        LocalMacBackend(bytes(32))
    monkeypatch.setenv("AUDITVEIL_INSECURE_LOCAL_KEY", "1")
    with pytest.raises(ConfigError):
        LocalMacBackend(bytes(32))


def test_deterministic_and_domain_separated(local_key: LocalMacBackend) -> None:
    t = Tokeniser(local_key)
    a1 = t.tokenise("usr", "alice")
    assert t.tokenise("usr", "alice") == a1
    assert t.tokenise("prn", "alice") != a1
    assert t.tokenise("ctx", "alice", "customer_id") != t.tokenise("ctx", "alice", "order_id")
    parsed = parse_token(a1)
    assert parsed is not None and parsed.domain == "usr" and parsed.key_version == 1


def test_cache_counts_and_new_entries(local_key: LocalMacBackend) -> None:
    t = Tokeniser(local_key, cache_size=100)
    for _ in range(5):
        t.tokenise("ip", "203.0.113.7")
    t.tokenise("ip", "203.0.113.8")
    assert (t.hsm_calls, t.cache_hits) == (2, 4)
    entries = t.drain()
    assert [(e.domain, e.value) for e in entries] == [("ip", "203.0.113.7"), ("ip", "203.0.113.8")]
    assert t.drain() == []


def test_cache_is_bounded(local_key: LocalMacBackend) -> None:
    t = Tokeniser(local_key, cache_size=50)
    tokens = [t.tokenise("usr", f"user{i}") for i in range(500)]
    assert len(t._cache) <= 50
    # Evicted values still give the same token (recomputed).
    assert t.tokenise("usr", "user0") == tokens[0]


def test_keys_refuse_pickling(local_key: LocalMacBackend) -> None:
    with pytest.raises(TypeError):
        pickle.dumps(local_key)


def test_shared_tokens_save_hsm_calls_but_not_entries_until_written(local_key: LocalMacBackend) -> None:
    from pipeline.tokenise import SharedTokens

    shared = SharedTokens(local_key.key_version, cache_size=100)
    a = Tokeniser(local_key, cache_size=100, shared=shared)
    b = Tokeniser(local_key, cache_size=100, shared=shared)
    tok = a.tokenise("ctx", "eu-user-1", "customer_id")
    assert a.hsm_calls == 1
    # Minted by a but not written yet: b reuses the token without an HSM call, and still seals
    # its own entry, so that its output does not depend on a's flush.
    assert b.tokenise("ctx", "eu-user-1", "customer_id") == tok
    assert (b.hsm_calls, b.cache_hits) == (0, 1)
    assert [(e.token, e.domain, e.sub, e.value) for e in b.drain()] == [(tok, "ctx", "customer_id", "eu-user-1")]
    entries = a.drain()
    assert [(e.domain, e.sub, e.value) for e in entries] == [("ctx", "customer_id", "eu-user-1")]
    a.entries_written(entries)
    c = Tokeniser(local_key, cache_size=100, shared=shared)
    assert c.tokenise("ctx", "eu-user-1", "customer_id") == tok
    assert (c.hsm_calls, c.cache_hits, c.drain()) == (0, 1, [])  # written: no HSM call, no second entry
    # The sub-label is part of the key: another context key is another token.
    assert c.tokenise("ctx", "eu-user-1", "order_id") != tok and c.hsm_calls == 1


def test_shared_tokens_of_another_key_version_are_not_used(local_key: LocalMacBackend) -> None:
    from pipeline.tokenise import SharedTokens

    other = SharedTokens(local_key.key_version + 1, cache_size=100)
    t = Tokeniser(local_key, cache_size=100, shared=other)
    t.tokenise("usr", "alice")
    t.entries_written(t.drain())
    assert other.durable(("usr", "", "alice")) is None and other.minted(("usr", "", "alice")) is None
    assert len(other) == 0


def test_shared_tokens_are_bounded(local_key: LocalMacBackend) -> None:
    from pipeline.tokenise import SharedTokens

    shared = SharedTokens(local_key.key_version, cache_size=10)
    t = Tokeniser(local_key, cache_size=10, shared=shared)
    for i in range(50):
        t.tokenise("ip", f"203.0.113.{i}")
        if i % 2:
            t.entries_written(t.drain())  # every second value's entry is written at once
    assert len(shared) <= 20
    key = ("ip", "", "203.0.113.49")
    assert shared.durable(key) is not None and shared.minted(key) is None  # promoted once written
