"""The hash-chained audit log: any single-byte edit, deletion, reordering or truncation is caught."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pipeline.reid import auditlog
from pipeline.reid.workflow import Reid
from tests.reid.helpers import Vault, sig

Keys = dict[str, Ed25519PrivateKey]


def _populate(reid: Reid, vault: Vault, keys: Keys) -> None:
    tokens = list(vault.values)
    req = reid.file_request(case="INC-1", reason="Zoë's laptop: key misuse", requester="ivan",
                            tokens=tokens[:3])
    reid.approve(req.id, "alice", sig(keys["alice"], req))
    reid.approve(req.id, "bob", sig(keys["bob"], req))
    req2 = reid.file_request(case="INC-2", reason="second case", requester="ivan", tokens=tokens[3:])
    reid.deny(req2.id, "carol", sig(keys["carol"], req2, "deny"), "not proportionate")
    with pytest.raises(Exception):
        reid.approve(req2.id, "ivan", sig(keys["ivan"], req2))


def _export(reid: Reid) -> bytes:
    return b"".join(auditlog.record_line(r) + b"\n" for r in reid.log()[0])


def test_exported_log_verifies_and_every_single_byte_edit_fails(reid: Reid, vault: Vault, keys: Keys) -> None:
    _populate(reid, vault, keys)
    data = _export(reid)
    verdict = auditlog.verify_lines(data.splitlines(keepends=True))
    assert verdict.ok, verdict.problem
    assert verdict.records == len(reid.log()[0]) >= 11
    assert f"{verdict.head_seq}:{verdict.head_hash}" == "{}:{}".format(*reid.log()[1])
    failures = 0
    for i in range(len(data)):
        if data[i] == 0x0A:  # line breaks separate records; blank lines are skipped
            continue
        for replacement in {data[i] ^ 0x01, 0x20}:
            if replacement == data[i]:
                continue
            edited = data[:i] + bytes([replacement]) + data[i + 1:]
            if auditlog.verify_lines(edited.splitlines(keepends=True)).ok:
                pytest.fail(f"an edit at byte {i} went unnoticed")
            failures += 1
    assert failures > 2 * len(data) - 200


def test_exported_log_deletion_reordering_truncation(reid: Reid, vault: Vault, keys: Keys) -> None:
    _populate(reid, vault, keys)
    lines = _export(reid).splitlines(keepends=True)
    assert not auditlog.verify_lines(lines[:3] + lines[4:]).ok  # deletion in the middle
    assert not auditlog.verify_lines(lines[1:]).ok  # deletion of the first
    swapped = [lines[1], lines[0], *lines[2:]]
    assert not auditlog.verify_lines(swapped).ok
    head = auditlog.verify_lines(lines)
    expect = f"{head.head_seq}:{head.head_hash}"
    truncated = auditlog.verify_lines(lines[:-1], expect_head=expect)
    assert not truncated.ok and "rewritten" in truncated.problem
    assert auditlog.verify_lines(lines, expect_head=expect).ok
    # A head recorded earlier is still found in a log that has grown since.
    earlier = auditlog.verify_lines(lines[:5])
    assert auditlog.verify_lines(lines, expect_head=f"{earlier.head_seq}:{earlier.head_hash}").ok


EDITABLE = ("at", "actor", "action", "request_id", "case_id", "tokens", "detail", "prev_hash", "hash")


def _edit_one_char(text: str) -> str:
    mid = len(text) // 2
    if not text:
        return "x"
    c = text[mid]
    return text[:mid] + ("0" if c != "0" else "1") + text[mid + 1:]


def test_database_edits_are_detected(reid: Reid, vault: Vault, keys: Keys) -> None:
    """Edit one character of every column of every stored record, one at a time."""
    _populate(reid, vault, keys)
    assert reid.verify_log().ok
    rows = reid.log()[0]
    for rec in rows:
        with reid.db.transaction() as tx:
            original = tx.one(f"SELECT {', '.join(EDITABLE)} FROM audit_log WHERE seq = ?", (rec["seq"],))
        assert original is not None
        for col, value in zip(EDITABLE, original, strict=True):
            with reid.db.transaction() as tx:
                tx.execute(f"UPDATE audit_log SET {col} = ? WHERE seq = ?",
                           (_edit_one_char(str(value)), rec["seq"]))
            assert not reid.verify_log().ok, f"edit of {col} in record {rec['seq']} went unnoticed"
            with reid.db.transaction() as tx:
                tx.execute(f"UPDATE audit_log SET {col} = ? WHERE seq = ?", (value, rec["seq"]))
        assert reid.verify_log().ok


def test_database_deletion_reordering_truncation(reid: Reid, vault: Vault, keys: Keys) -> None:
    _populate(reid, vault, keys)
    good = reid.verify_log()
    expect = f"{good.head_seq}:{good.head_hash}"
    with reid.db.transaction() as tx:  # reorder: swap the seq of records 2 and 3
        tx.execute("UPDATE audit_log SET seq = -1 WHERE seq = 2")
        tx.execute("UPDATE audit_log SET seq = 2 WHERE seq = 3")
        tx.execute("UPDATE audit_log SET seq = 3 WHERE seq = -1")
    assert not reid.verify_log().ok
    with reid.db.transaction() as tx:
        tx.execute("UPDATE audit_log SET seq = -1 WHERE seq = 2")
        tx.execute("UPDATE audit_log SET seq = 2 WHERE seq = 3")
        tx.execute("UPDATE audit_log SET seq = 3 WHERE seq = -1")
    assert reid.verify_log().ok
    with reid.db.transaction() as tx:  # truncate the tail
        last = tx.one("SELECT seq, hash, prev_hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        assert last is not None
        tx.execute("DELETE FROM audit_log WHERE seq = ?", (last[0],))
    verdict = reid.verify_log()
    assert not verdict.ok and "removed" in verdict.problem
    with reid.db.transaction() as tx:  # ... and rewrite the head to hide it: the kept head catches it
        tx.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", (int(last[0]) - 1, last[2]))
    assert reid.verify_log().ok
    assert not reid.verify_log(expect_head=expect).ok
    with reid.db.transaction() as tx:  # delete in the middle
        tx.execute("DELETE FROM audit_log WHERE seq = 4")
    assert not reid.verify_log().ok


def test_appends_after_a_refusal_keep_the_chain(reid: Reid, vault: Vault, keys: Keys) -> None:
    _populate(reid, vault, keys)
    actions = [r["action"] for r in reid.log()[0]]
    assert actions.count("refused") == 1 and actions.count("denied") == 1
    refused = next(r for r in reid.log()[0] if r["action"] == "refused")
    assert refused["detail"] == {"attempted": "approved", "refusal": "self_approval"}
    assert refused["actor"] == "ivan" and refused["case_id"] == "INC-2"
