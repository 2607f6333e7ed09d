"""The re-identification rules, on SQLite and on a real PostgreSQL, with a real HSM reveal."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pipeline.config import Settings
from pipeline.errors import ConfigError, ReidRefused
from pipeline.reid import workflow
from pipeline.reid.workflow import Opener, Reid, Request
from tests.reid.helpers import Vault, reid_settings, sig

Keys = dict[str, Ed25519PrivateKey]

UNKNOWN = "prn.k1.aaaaaaaaaaaaaaaaaaaaaaaaaa"  # well-formed, never minted


def _file(reid: Reid, vault: Vault, requester: str = "ivan", **kw: object) -> Request:
    return reid.file_request(case="INC-2026-0042", reason="suspected key misuse; GDPR Art. 6(1)(f)",
                             requester=requester, tokens=[*vault.values, UNKNOWN], **kw)  # type: ignore[arg-type]


def _approve(reid: Reid, keys: Keys, req: Request, *names: str) -> Request:
    for n in names:
        req = reid.approve(req.id, n, sig(keys[n], req))
    return req


def _refusals(reid: Reid) -> list[str]:
    return [r["detail"]["refusal"] for r in reid.log()[0] if r["action"] == "refused"]


def _refused(reid: Reid, code: str, fn: Callable[[], object]) -> None:
    before = len(_refusals(reid))
    with pytest.raises(ReidRefused):
        fn()
    after = _refusals(reid)
    assert len(after) == before + 1 and after[-1] == code
    assert reid.verify_log().ok


def test_full_flow_reveals_exact_original_values(reid: Reid, vault: Vault, keys: Keys,
                                                 opener: Opener) -> None:
    req = _file(reid, vault)
    assert req.status == "pending" and len(req.tokens) == len(vault.values) + 1
    req = _approve(reid, keys, req, "alice")
    assert req.status == "pending"
    req = _approve(reid, keys, req, "bob")
    assert req.status == "approved"

    res = reid.reveal(req.id, "ivan", opener)
    assert res.values == vault.values
    assert res.no_entry == (UNKNOWN,) and res.unrecoverable == ()

    verdict = reid.verify_log()
    assert verdict.ok, verdict.problem
    records = reid.log()[0]
    actions = [r["action"] for r in records]
    assert actions[-5:] == ["request_filed", "approved", "approved", "request_approved", "revealed"]
    revealed = records[-1]
    assert revealed["actor"] == "ivan" and revealed["case_id"] == "INC-2026-0042"
    assert revealed["request_id"] == req.id and set(revealed["tokens"]) == set(req.tokens)
    # The log says who/what/when/which tokens, never a revealed value.
    dump = orjson.dumps(records).decode("utf-8")
    for value in vault.values.values():
        assert value not in dump


def test_reveal_subset_of_tokens(reid: Reid, vault: Vault, keys: Keys,
                                 opener: Opener) -> None:
    req = _approve(reid, keys, _file(reid, vault), "alice", "carol")
    ip = vault.token_of("203.0.113.77")
    assert reid.reveal(req.id, "ivan", opener, [ip]).values == {ip: "203.0.113.77"}


def test_self_approval_refused(reid: Reid, vault: Vault, keys: Keys) -> None:
    req = _file(reid, vault, requester="ivan")  # ivan is also an enrolled custodian
    _refused(reid, "self_approval", lambda: reid.approve(req.id, "ivan", sig(keys["ivan"], req)))
    assert reid.get(req.id).decisions == ()


def test_unknown_custodian_refused(reid: Reid, vault: Vault, keys: Keys) -> None:
    req = _file(reid, vault)
    _refused(reid, "unknown_custodian", lambda: reid.approve(req.id, "mallory", sig(keys["mallory"], req)))


def test_bad_signature_refused(reid: Reid, vault: Vault, keys: Keys) -> None:
    req = _file(reid, vault)
    _refused(reid, "bad_signature", lambda: reid.approve(req.id, "alice", sig(keys["bob"], req)))
    _refused(reid, "bad_signature", lambda: reid.approve(req.id, "alice", "not base64!"))
    _refused(reid, "bad_signature", lambda: reid.approve(req.id, "alice", "AAAA"))
    good = bytearray(__import__("base64").b64decode(sig(keys["alice"], req)))
    good[10] ^= 1
    _refused(reid, "bad_signature",
             lambda: reid.approve(req.id, "alice", __import__("base64").b64encode(bytes(good)).decode()))
    assert reid.get(req.id).decisions == ()


def test_signature_for_another_request_refused(reid: Reid, vault: Vault,
                                               keys: Keys) -> None:
    first, second = _file(reid, vault), _file(reid, vault)
    _refused(reid, "bad_signature", lambda: reid.approve(second.id, "alice", sig(keys["alice"], first)))


def test_denial_signature_is_not_an_approval(reid: Reid, vault: Vault, keys: Keys) -> None:
    req = _file(reid, vault)
    _refused(reid, "bad_signature", lambda: reid.approve(req.id, "alice", sig(keys["alice"], req, "deny")))
    _refused(reid, "bad_signature", lambda: reid.deny(req.id, "alice", sig(keys["alice"], req), "no basis"))


def test_duplicate_approval_refused(reid: Reid, vault: Vault, keys: Keys,
                                    opener: Opener) -> None:
    req = _approve(reid, keys, _file(reid, vault), "alice")
    _refused(reid, "duplicate_decision", lambda: reid.approve(req.id, "alice", sig(keys["alice"], req)))
    assert reid.get(req.id).status == "pending"
    _refused(reid, "quorum_not_met", lambda: reid.reveal(req.id, "ivan", opener))


def test_quorum_not_met_refused(reid: Reid, vault: Vault, keys: Keys, opener: Opener,
                                settings: Settings) -> None:
    req = _file(reid, vault)
    _refused(reid, "quorum_not_met", lambda: reid.reveal(req.id, "ivan", opener))
    _approve(reid, keys, req, "alice")
    _refused(reid, "quorum_not_met", lambda: reid.reveal(req.id, "ivan", opener))
    # A larger quorum in force now also binds requests filed under a smaller one.
    strict = Reid(reid.db, reid_settings(settings, quorum=3).reid)
    req2 = _approve(strict, keys, _file(strict, vault), "alice", "bob")
    assert req2.status == "pending"
    assert _approve(strict, keys, req2, "carol").status == "approved"
    assert strict.reveal(req2.id, "ivan", opener).values == vault.values


def test_denied_request_refused(reid: Reid, vault: Vault, keys: Keys,
                                opener: Opener) -> None:
    req = _approve(reid, keys, _file(reid, vault), "alice", "bob")
    assert req.status == "approved"
    denied = reid.deny(req.id, "carol", sig(keys["carol"], req, "deny"), "no legal basis for IP addresses")
    assert denied.status == "denied"
    _refused(reid, "denied", lambda: reid.reveal(req.id, "ivan", opener))
    req2 = _file(reid, vault)
    reid.deny(req2.id, "alice", sig(keys["alice"], req2, "deny"), "case closed")
    _refused(reid, "denied", lambda: reid.approve(req2.id, "bob", sig(keys["bob"], req2)))
    with pytest.raises(ConfigError):
        reid.deny(req2.id, "carol", sig(keys["carol"], req2, "deny"), "")


def _shift_clock(monkeypatch: pytest.MonkeyPatch, delta: dt.timedelta) -> None:
    real = workflow.utc_now
    monkeypatch.setattr(workflow, "utc_now", lambda: real() + delta)


def test_expired_request_refused(reid: Reid, vault: Vault, keys: Keys, opener: Opener,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    late = _file(reid, vault, expires_in_hours=1)
    approved = _approve(reid, keys, _file(reid, vault, expires_in_hours=1), "alice", "bob")
    _shift_clock(monkeypatch, dt.timedelta(hours=1, seconds=1))
    assert reid.get(late.id).shown_status() == "expired"
    _refused(reid, "expired", lambda: reid.approve(late.id, "alice", sig(keys["alice"], late)))
    _refused(reid, "expired", lambda: reid.reveal(approved.id, "ivan", opener))


def test_wrong_requester_refused(reid: Reid, vault: Vault, keys: Keys,
                                 opener: Opener) -> None:
    req = _approve(reid, keys, _file(reid, vault), "alice", "bob")
    _refused(reid, "wrong_requester", lambda: reid.reveal(req.id, "alice", opener))
    assert reid.get(req.id).reveals_used == 0


def test_token_not_in_request_refused(reid: Reid, vault: Vault, keys: Keys,
                                      opener: Opener) -> None:
    some = list(vault.values)[:2]
    req = reid.file_request(case="INC-7", reason="phishing follow-up", requester="ivan", tokens=some)
    req = _approve(reid, keys, req, "alice", "bob")
    other = list(vault.values)[2]
    _refused(reid, "token_not_in_request", lambda: reid.reveal(req.id, "ivan", opener, [some[0], other]))
    assert reid.reveal(req.id, "ivan", opener, [some[0]]).values == {some[0]: vault.values[some[0]]}


def test_reveal_is_one_use_by_default(reid: Reid, vault: Vault, keys: Keys,
                                      opener: Opener) -> None:
    req = _approve(reid, keys, _file(reid, vault), "alice", "bob")
    reid.reveal(req.id, "ivan", opener)
    _refused(reid, "used_up", lambda: reid.reveal(req.id, "ivan", opener))


def test_reveal_window(reid: Reid, vault: Vault, keys: Keys, opener: Opener,
                       settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    windowed = Reid(reid.db, reid_settings(settings, reveal_uses=0, reveal_window_minutes=10).reid)
    req = _approve(windowed, keys, _file(windowed, vault), "alice", "bob")
    for _ in range(3):
        assert windowed.reveal(req.id, "ivan", opener).values == vault.values
    _shift_clock(monkeypatch, dt.timedelta(minutes=11))
    _refused(windowed, "window_closed", lambda: windowed.reveal(req.id, "ivan", opener))


def test_approval_forged_in_the_database_does_not_count(reid: Reid, vault: Vault,
                                                        keys: Keys, opener: Opener) -> None:
    """A database administrator inserts an approval row and flips the status: the reveal re-verifies."""
    req = _approve(reid, keys, _file(reid, vault), "alice")
    forged = sig(keys["mallory"], req)  # mallory's key, carol's name
    with reid.db.transaction() as tx:
        tx.execute("INSERT INTO decisions (request_id, custodian, decision, signature, reason, at) "
                   "VALUES (?, 'carol', 'approve', ?, '', '2026-01-01T00:00:00.000000Z')", (req.id, forged))
        tx.execute("UPDATE requests SET status = 'approved' WHERE id = ?", (req.id,))
    _refused(reid, "quorum_not_met", lambda: reid.reveal(req.id, "ivan", opener))
    # An approval copied from another request does not count either.
    other = _approve(reid, keys, _file(reid, vault), "bob")
    copied = next(d.signature for d in reid.get(other.id).decisions if d.custodian == "bob")
    with reid.db.transaction() as tx:
        tx.execute("DELETE FROM decisions WHERE request_id = ? AND custodian = 'carol'", (req.id,))
        tx.execute("INSERT INTO decisions (request_id, custodian, decision, signature, reason, at) "
                   "VALUES (?, 'bob', 'approve', ?, '', '2026-01-01T00:00:00.000000Z')", (req.id, copied))
    _refused(reid, "quorum_not_met", lambda: reid.reveal(req.id, "ivan", opener))


def test_request_edited_in_the_database_is_refused(reid: Reid, vault: Vault,
                                                   keys: Keys, opener: Opener) -> None:
    few = list(vault.values)[:1]
    req = reid.file_request(case="INC-9", reason="one token only", requester="ivan", tokens=few)
    req = _approve(reid, keys, req, "alice", "bob")
    with reid.db.transaction() as tx:
        tx.execute("UPDATE requests SET tokens = ? WHERE id = ?",
                   (orjson.dumps(list(vault.values)).decode(), req.id))
    _refused(reid, "tampered_request", lambda: reid.reveal(req.id, "ivan", opener))
    with reid.db.transaction() as tx:
        tx.execute("UPDATE requests SET tokens = ?, requester = 'carol' WHERE id = ?",
                   (orjson.dumps(few).decode(), req.id))
    _refused(reid, "tampered_request", lambda: reid.reveal(req.id, "carol", opener))


def test_request_validation(reid: Reid, vault: Vault, settings: Settings) -> None:
    small = Reid(reid.db, reid_settings(settings, max_tokens=2).reid)
    with pytest.raises(ConfigError, match="at most 2"):
        small.file_request(case="C-1", reason="r", requester="ivan", tokens=list(vault.values)[:3])
    for bad in ({"tokens": ["alice@example.com"]}, {"tokens": []}, {"case": "two words"},
                {"reason": "line\nbreak"}, {"requester": "-x"}, {"expires_in_hours": 0}):
        args: dict[str, object] = {"case": "C-1", "reason": "r", "requester": "ivan", "tokens": [UNKNOWN],
                                   **bad}
        with pytest.raises(ConfigError):
            reid.file_request(**args)  # type: ignore[arg-type]
    with pytest.raises(ReidRefused):
        reid.get("req-doesnotexist")


def test_enrolment_rules(reid: Reid, keys: Keys) -> None:
    from tests.reid.helpers import pub_pem

    with pytest.raises(ConfigError, match="already enrolled"):
        reid.enrol_custodian("alice", pub_pem(keys["mallory"]), "test-admin")
    with pytest.raises(ConfigError, match="another custodian"):
        reid.enrol_custodian("alice2", pub_pem(keys["alice"]), "test-admin")
    with pytest.raises(ConfigError, match="Ed25519"):
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        ec_pem = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        reid.enrol_custodian("eve", ec_pem, "test-admin")
    assert [c["name"] for c in reid.custodians()] == ["alice", "bob", "carol", "ivan"]


def test_concurrent_approvals_stay_consistent(reid: Reid, vault: Vault,
                                              keys: Keys) -> None:
    """Three custodians approve at once (quorum 2), and one custodian four times at once."""
    req = _file(reid, vault)
    other = _file(reid, vault)
    jobs = [(req, n) for n in ("alice", "bob", "carol")] + [(other, "alice")] * 4
    barrier = threading.Barrier(len(jobs))
    outcomes: list[str] = []
    lock = threading.Lock()

    def approve(r: Request, name: str) -> None:
        barrier.wait()
        try:
            reid.approve(r.id, name, sig(keys[name], r))
            result = "ok"
        except ReidRefused:
            result = "refused"
        with lock:
            outcomes.append(f"{r.id}:{result}")

    threads = [threading.Thread(target=approve, args=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert outcomes.count(f"{req.id}:ok") == 2 and outcomes.count(f"{req.id}:refused") == 1
    assert outcomes.count(f"{other.id}:ok") == 1 and outcomes.count(f"{other.id}:refused") == 3
    final = reid.get(req.id)
    assert final.status == "approved" and len(final.decisions) == 2
    assert len(reid.get(other.id).decisions) == 1
    records = reid.log()[0]
    assert sum(r["action"] == "request_approved" and r["request_id"] == req.id for r in records) == 1
    verdict = reid.verify_log()
    assert verdict.ok, verdict.problem
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
