"""The append-only, hash-chained audit log of every re-identification step.

Each record is a JSON object; its ``hash`` is the lowercase hex SHA-256 of the record's
canonical JSON *without* the ``hash`` field (sorted keys, no whitespace, UTF-8), and its
``prev_hash`` is the ``hash`` of the record before (64 zeros for the first). ``seq`` counts
from 1 without gaps. So editing any field of any record breaks its hash, deleting or
reordering records breaks ``seq`` and ``prev_hash``, and truncating the tail is caught by the
head (last ``seq`` and ``hash``) kept beside the log and printed by ``auditveil reid log
--verify``: write that line somewhere the database administrator cannot (a ticket, a WORM
bucket) and pass it back with ``--expect-head`` to prove the log was not rewritten since.

Records hold who (``actor``), what (``action``, ``detail``), when (``at``), which request and
case, and which tokens; never a revealed value (tokens are pseudonyms, not identifiers).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from pipeline.reid.db import GENESIS, Tx

FIELDS = ("seq", "at", "actor", "action", "request_id", "case_id", "tokens", "detail", "prev_hash")
_COLUMNS = ", ".join((*FIELDS, "hash"))


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def fmt_time(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(s: str) -> dt.datetime:
    return dt.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)


def _canon(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


def record_hash(record: dict[str, Any]) -> str:
    return hashlib.sha256(_canon({k: record[k] for k in FIELDS})).hexdigest()


def record_line(record: dict[str, Any]) -> bytes:
    """One record as its canonical JSON line (what ``auditveil reid log`` prints)."""
    return _canon({k: record[k] for k in (*FIELDS, "hash")})


def append(tx: Tx, *, actor: str, action: str, request_id: str = "", case_id: str = "",
           tokens: Sequence[str] = (), detail: dict[str, Any] | None = None) -> dict[str, Any]:
    """Append one record inside ``tx`` (locks the head row so appends never fork the chain)."""
    head = tx.lock("SELECT seq, hash FROM audit_head WHERE id = 1")
    if head is None:  # pragma: no cover - created with the schema
        raise RuntimeError("audit head missing")
    seq, prev = int(head[0]) + 1, str(head[1])
    record: dict[str, Any] = {
        "seq": seq, "at": fmt_time(utc_now()), "actor": actor, "action": action,
        "request_id": request_id, "case_id": case_id, "tokens": list(tokens),
        "detail": detail or {}, "prev_hash": prev,
    }
    record["hash"] = record_hash(record)
    tx.execute(
        f"INSERT INTO audit_log ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (seq, record["at"], actor, action, request_id, case_id, _canon(record["tokens"]).decode(),
         _canon(record["detail"]).decode(), prev, record["hash"]),
    )
    tx.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", (seq, record["hash"]))
    return record


def _row_to_record(row: tuple[Any, ...]) -> dict[str, Any]:
    rec = dict(zip((*FIELDS, "hash"), row, strict=True))
    rec["seq"] = int(rec["seq"])
    rec["tokens"] = orjson.loads(rec["tokens"])
    rec["detail"] = orjson.loads(rec["detail"])
    return rec


def read_all(tx: Tx) -> tuple[list[dict[str, Any]], tuple[int, str]]:
    """Every record in ``seq`` order, and the head (last seq, last hash)."""
    rows = tx.all(f"SELECT {_COLUMNS} FROM audit_log ORDER BY seq")
    head = tx.one("SELECT seq, hash FROM audit_head WHERE id = 1")
    records = []
    for row in rows:
        try:
            records.append(_row_to_record(row))
        except (orjson.JSONDecodeError, ValueError, TypeError):
            records.append({"seq": row[0], "_unreadable": True})
    return records, (int(head[0]), str(head[1])) if head else (0, GENESIS)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    records: int
    head_seq: int
    head_hash: str
    problem: str = ""

    def summary(self) -> str:
        if self.ok:
            return f"audit log OK: {self.records} records, head {self.head_seq}:{self.head_hash}"
        return f"audit log BROKEN: {self.problem}"


def verify_records(records: Iterable[dict[str, Any]], head: tuple[int, str] | None = None,
                   expect_head: str = "") -> Verdict:
    """Check the chain; ``head`` is the stored head, ``expect_head`` a ``SEQ:HASH`` kept elsewhere."""
    records = list(records)
    prev, expected_seq, n = GENESIS, 1, 0
    last_hash = GENESIS
    for rec in records:
        n += 1
        if rec.get("_unreadable"):
            return Verdict(False, n, expected_seq - 1, last_hash, f"record {expected_seq} is unreadable")
        if set(rec) != {*FIELDS, "hash"}:
            return Verdict(False, n, expected_seq - 1, last_hash,
                           f"record {expected_seq} has missing or extra fields")
        if rec["seq"] != expected_seq:
            return Verdict(False, n, expected_seq - 1, last_hash,
                           f"record {expected_seq} is missing or out of order (found seq {rec['seq']})")
        if rec["prev_hash"] != prev:
            return Verdict(False, n, expected_seq - 1, last_hash,
                           f"record {expected_seq} does not chain to record {expected_seq - 1}")
        if record_hash(rec) != rec["hash"]:
            return Verdict(False, n, expected_seq - 1, last_hash, f"record {expected_seq} was altered")
        prev = last_hash = rec["hash"]
        expected_seq += 1
    last_seq = expected_seq - 1
    if head is not None and head != (last_seq, last_hash):
        return Verdict(False, n, last_seq, last_hash,
                       f"the log ends at record {last_seq} but its head says {head[0]}: records were removed "
                       "or the head was altered")
    if expect_head:
        if expect_head != f"{last_seq}:{last_hash}" and not _has_prefix(records, expect_head):
            return Verdict(False, n, last_seq, last_hash,
                           "the expected head is not in this log: it was rewritten")
    return Verdict(True, n, last_seq, last_hash)


def _has_prefix(records: list[dict[str, Any]], expect_head: str) -> bool:
    seq_s, _, h = expect_head.partition(":")
    return any(f"{r.get('seq')}" == seq_s and r.get("hash") == h for r in records)


def verify_lines(lines: Iterable[bytes], expect_head: str = "") -> Verdict:
    """Verify an exported log (``auditveil reid log > file``), byte for byte."""
    records: list[dict[str, Any]] = []
    for i, raw in enumerate(lines, start=1):
        line = raw.rstrip(b"\n")
        if not line:
            continue
        try:
            rec = orjson.loads(line)
        except orjson.JSONDecodeError:
            return Verdict(False, i, i - 1, "", f"line {i} is not JSON")
        if not isinstance(rec, dict) or set(rec) != {*FIELDS, "hash"}:
            return Verdict(False, i, i - 1, "", f"line {i} is not an audit record")
        try:
            canonical = record_line(rec)
        except (TypeError, orjson.JSONEncodeError):  # pragma: no cover
            return Verdict(False, i, i - 1, "", f"line {i} is not an audit record")
        if canonical != line:
            return Verdict(False, i, i - 1, "", f"line {i} is not in canonical form: it was edited")
        records.append(rec)
    return verify_records(records, None, expect_head)
