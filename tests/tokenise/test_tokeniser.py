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


def test_shared_durable_tokens_are_reused_only_once_written(local_key: LocalMacBackend) -> None:
    from pipeline.tokenise import DurableTokens

    durable = DurableTokens(local_key.key_version, cache_size=100)
    a = Tokeniser(local_key, cache_size=100, durable=durable)
    b = Tokeniser(local_key, cache_size=100, durable=durable)
    tok = a.tokenise("ctx", "eu-user-1", "customer_id")
    # Not written yet: b must mint (and seal) its own entry rather than borrow a's token.
    assert b.tokenise("ctx", "eu-user-1", "customer_id") == tok
    assert b.hsm_calls == 1 and len(b.drain()) == 1
    entries = a.drain()
    assert [(e.domain, e.sub, e.value) for e in entries] == [("ctx", "customer_id", "eu-user-1")]
    a.entries_written(entries)
    c = Tokeniser(local_key, cache_size=100, durable=durable)
    assert c.tokenise("ctx", "eu-user-1", "customer_id") == tok
    assert (c.hsm_calls, c.cache_hits, c.drain()) == (0, 1, [])  # no HSM call, no second entry
    # The sub-label is part of the key: another context key is another token.
    assert c.tokenise("ctx", "eu-user-1", "order_id") != tok and c.hsm_calls == 1


def test_durable_tokens_of_another_key_version_are_not_used(local_key: LocalMacBackend) -> None:
    from pipeline.tokenise import DurableTokens

    other = DurableTokens(local_key.key_version + 1, cache_size=100)
    t = Tokeniser(local_key, cache_size=100, durable=other)
    t.tokenise("usr", "alice")
    t.entries_written(t.drain())
    assert other.get(("usr", "", "alice")) is None


def test_durable_tokens_are_bounded(local_key: LocalMacBackend) -> None:
    from pipeline.tokenise import DurableTokens

    durable = DurableTokens(local_key.key_version, cache_size=10)
    t = Tokeniser(local_key, cache_size=10, durable=durable)
    for i in range(50):
        t.tokenise("ip", f"203.0.113.{i}")
        t.entries_written(t.drain())
    assert len(durable) <= 10
    assert durable.get(("ip", "", "203.0.113.49")) is not None
