"""The re-identification rules: file, approve, deny, reveal — each checked, each audited.

A request is revealed only if, at the moment of the reveal and inside one transaction:

* the caller is the request's requester;
* the request is not denied, not expired, and its stored facts still hash to its digest;
* at least ``quorum`` distinct enrolled custodians, none of them the requester, have a stored
  approval whose Ed25519 signature verifies *now* against their enrolled public key over the
  decision message for this request's digest (so a row forged in the database, a signature
  copied from another request, or a denial turned into an approval does not count);
* the reveal allowance is not used up (``reid.reveal_uses``) and the window after approval
  (``reid.reveal_window_minutes``) has not closed;
* every token asked for is one of the request's tokens.

Every refusal is appended to the audit log as its own record (action ``refused``) after the
refused transaction has rolled back, so a refused attempt leaves a trace but no state change.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from pipeline.config import ReidSettings
from pipeline.errors import AuditveilError, ConfigError, ReidRefused
from pipeline.reid import auditlog, signing
from pipeline.reid.auditlog import fmt_time, parse_time, utc_now
from pipeline.reid.db import Database, Tx
from pipeline.reid.digest import RequestFacts, canonical_tokens, decision_message, request_digest
from pipeline.tokenise.token_format import parse_token

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}")
CASE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/#+-]{0,127}")
MAX_REASON = 2000
MAX_EXPIRY_HOURS = 24 * 90


@dataclass(frozen=True)
class Opened:
    """What the lookup vault gave back for some tokens."""

    values: dict[str, str] = field(default_factory=dict)
    no_entry: tuple[str, ...] = ()
    unrecoverable: tuple[str, ...] = ()


# Opens the lookup vault for the given tokens (HSM unwrap + AES-GCM open); see reveal.py.
Opener = Callable[[Sequence[str]], Opened]


@dataclass(frozen=True)
class Decision:
    custodian: str
    decision: str
    signature: str
    reason: str
    at: str


@dataclass(frozen=True)
class Request:
    id: str
    case: str
    reason: str
    requester: str
    tokens: tuple[str, ...]
    created_at: str
    expires_at: str
    digest: str
    status: str
    quorum: int
    decided_at: str | None
    reveals_used: int
    decisions: tuple[Decision, ...] = ()

    def facts(self) -> RequestFacts:
        return RequestFacts(self.id, self.case, self.reason, self.requester, self.tokens,
                            self.created_at, self.expires_at)

    def expired(self, now: dt.datetime | None = None) -> bool:
        return (now or utc_now()) >= parse_time(self.expires_at)

    def shown_status(self) -> str:
        return "expired" if self.status in ("pending", "approved") and self.expired() else self.status

    def public(self) -> dict[str, Any]:
        """The request as plain data (tokens are pseudonyms; no values are ever held here)."""
        return {
            "id": self.id, "case": self.case, "reason": self.reason, "requester": self.requester,
            "tokens": list(self.tokens), "created_at": self.created_at, "expires_at": self.expires_at,
            "status": self.shown_status(), "quorum": self.quorum, "decided_at": self.decided_at,
            "reveals_used": self.reveals_used, "digest": self.digest,
            "approve_message": decision_message(self.digest, "approve").decode("ascii"),
            "deny_message": decision_message(self.digest, "deny").decode("ascii"),
            "approvals": [d.custodian for d in self.decisions if d.decision == "approve"],
            "denials": [{"custodian": d.custodian, "reason": d.reason} for d in self.decisions
                        if d.decision == "deny"],
        }


@dataclass(frozen=True)
class RevealResult:
    request_id: str
    values: dict[str, str]
    no_entry: tuple[str, ...]
    unrecoverable: tuple[str, ...]


class _Refusal(Exception):
    def __init__(self, code: str, message: str, case: str = "", tokens: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.case = case
        self.tokens = tuple(tokens)


def check_name(name: str, what: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise ConfigError(f"the {what} name must be 1-128 letters, digits or . _ @ + - "
                          "(starting with a letter or digit)")
    return name


_REQ_COLS = ("id, case_id, reason, requester, tokens, created_at, expires_at, digest, status, quorum, "
             "decided_at, reveals_used")


class Reid:
    """The workflow over one database. Thread-safe: each call is one transaction."""

    def __init__(self, db: Database, settings: ReidSettings) -> None:
        self.db = db
        self.settings = settings

    # -- custodians ------------------------------------------------------------------------------

    def enrol_custodian(self, name: str, public_key_pem: bytes, actor: str) -> str:
        """Enrol ``name`` with an Ed25519 public key; returns the key fingerprint."""
        check_name(name, "custodian")
        key = signing.load_public_key_pem(public_key_pem)
        fp = signing.fingerprint(key)
        with self.db.transaction() as tx:
            if tx.one("SELECT name FROM custodians WHERE name = ?", (name,)):
                raise ConfigError("a custodian with this name is already enrolled")
            if tx.one("SELECT name FROM custodians WHERE fingerprint = ?", (fp,)):
                raise ConfigError("this public key is already enrolled for another custodian")
            tx.execute("INSERT INTO custodians (name, public_key_pem, fingerprint, enrolled_at) "
                       "VALUES (?, ?, ?, ?)", (name, signing.public_key_pem(key), fp, fmt_time(utc_now())))
            auditlog.append(tx, actor=actor, action="custodian_enrolled", detail={"custodian": name,
                                                                                   "fingerprint": fp})
        return fp

    def custodians(self) -> list[dict[str, str]]:
        with self.db.transaction(write=False) as tx:
            rows = tx.all("SELECT name, fingerprint, enrolled_at FROM custodians ORDER BY name")
        return [{"name": r[0], "fingerprint": r[1], "enrolled_at": r[2]} for r in rows]

    # -- requests --------------------------------------------------------------------------------

    def file_request(self, *, case: str, reason: str, requester: str, tokens: Iterable[str],
                     expires_in_hours: int | None = None) -> Request:
        check_name(requester, "requester")
        if not CASE_RE.fullmatch(case):
            raise ConfigError("the case id must be 1-128 letters, digits or . _ : / # + - characters")
        reason = reason.strip()
        if not reason or len(reason) > MAX_REASON or any(ord(c) < 32 for c in reason):
            raise ConfigError(f"the reason must be 1-{MAX_REASON} printable characters on one line")
        toks = canonical_tokens(tokens)
        if not toks:
            raise ConfigError("a request needs at least one token")
        if len(toks) > self.settings.max_tokens:
            raise ConfigError(f"a request may name at most {self.settings.max_tokens} tokens "
                              "(reid.max_tokens)")
        if any(parse_token(t) is None for t in toks):
            raise ConfigError("every token must look like <domain>.k<version>.<26 base32 characters>")
        hours = self.settings.default_expiry_hours if expires_in_hours is None else expires_in_hours
        if not 0 < hours <= MAX_EXPIRY_HOURS:
            raise ConfigError(f"the expiry must be between 1 and {MAX_EXPIRY_HOURS} hours")
        now = utc_now()
        facts = RequestFacts(id=f"req-{secrets.token_hex(8)}", case=case, reason=reason, requester=requester,
                             tokens=toks, created_at=fmt_time(now),
                             expires_at=fmt_time(now + dt.timedelta(hours=hours)))
        digest = request_digest(facts)
        with self.db.transaction() as tx:
            tx.execute(
                f"INSERT INTO requests ({_REQ_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (facts.id, case, reason, requester, orjson.dumps(list(toks)).decode(), facts.created_at,
                 facts.expires_at, digest, "pending", self.settings.quorum, None, 0),
            )
            auditlog.append(tx, actor=requester, action="request_filed", request_id=facts.id, case_id=case,
                            tokens=toks, detail={"reason": reason, "expires_at": facts.expires_at,
                                                 "digest": digest, "quorum": self.settings.quorum})
        return self.get(facts.id)

    def get(self, request_id: str) -> Request:
        with self.db.transaction(write=False) as tx:
            req = self._load(tx, request_id, lock=False)
        if req is None:
            raise ReidRefused("there is no request with this id")
        return req

    def requests(self) -> list[Request]:
        with self.db.transaction(write=False) as tx:
            ids = [r[0] for r in tx.all("SELECT id FROM requests ORDER BY created_at, id")]
            return [r for i in ids if (r := self._load(tx, i, lock=False)) is not None]

    def _load_for_update(self, tx: Tx, request_id: str) -> Request:
        """The request, its row locked for this transaction; a refusal if there is none."""
        req = self._load(tx, request_id, lock=True)
        if req is None:
            raise _Refusal("no_such_request", "there is no request with this id")
        return req

    def _load(self, tx: Tx, request_id: str, *, lock: bool) -> Request | None:
        sql = f"SELECT {_REQ_COLS} FROM requests WHERE id = ?"
        row = tx.lock(sql, (request_id,)) if lock else tx.one(sql, (request_id,))
        if row is None:
            return None
        decisions = tuple(Decision(*d) for d in tx.all(
            "SELECT custodian, decision, signature, reason, at FROM decisions WHERE request_id = ? "
            "ORDER BY at, custodian", (request_id,)))
        try:
            tokens = tuple(orjson.loads(row[4]))
        except orjson.JSONDecodeError:
            tokens = ()
        return Request(row[0], row[1], row[2], row[3], tokens, row[5], row[6], row[7], row[8], int(row[9]),
                       row[10], int(row[11]), decisions)

    # -- decisions -------------------------------------------------------------------------------

    def approve(self, request_id: str, custodian: str, signature_b64: str) -> Request:
        return self._decide(request_id, custodian, signature_b64, "approve", "")

    def deny(self, request_id: str, custodian: str, signature_b64: str, reason: str) -> Request:
        reason = reason.strip()
        if not reason or len(reason) > MAX_REASON or any(ord(c) < 32 for c in reason):
            raise ConfigError(f"a denial needs a reason of 1-{MAX_REASON} printable characters on one line")
        return self._decide(request_id, custodian, signature_b64, "deny", reason)

    def _decide(self, request_id: str, custodian: str, signature_b64: str, decision: str,
                reason: str) -> Request:
        action = "approved" if decision == "approve" else "denied"
        try:
            with self.db.transaction() as tx:
                req = self._load_for_update(tx, request_id)
                ctx = (req.case, req.tokens)
                key_row = tx.one("SELECT public_key_pem FROM custodians WHERE name = ?", (custodian,))
                if key_row is None:
                    raise _Refusal("unknown_custodian", "this custodian is not enrolled", *ctx)
                if custodian == req.requester:
                    raise _Refusal("self_approval", "a custodian cannot decide on their own request", *ctx)
                if req.status == "denied":
                    raise _Refusal("denied", "the request was denied; file a new one", *ctx)
                if req.expired():
                    raise _Refusal("expired", "the request has expired; file a new one", *ctx)
                if decision == "approve" and req.status != "pending":
                    raise _Refusal("already_decided", "the request is already approved", *ctx)
                if any(d.custodian == custodian for d in req.decisions):
                    raise _Refusal("duplicate_decision", "this custodian has already decided on this request",
                                   *ctx)
                if request_digest(req.facts()) != req.digest:
                    raise _Refusal("tampered_request", "the stored request no longer matches its digest",
                                   *ctx)
                key = signing.load_public_key_pem(str(key_row[0]).encode("ascii"))
                if not signing.verify(key, decision_message(req.digest, decision), signature_b64):
                    raise _Refusal("bad_signature", "the signature does not verify for this custodian, this "
                                   "request and this decision", *ctx)
                now = fmt_time(utc_now())
                tx.execute("INSERT INTO decisions (request_id, custodian, decision, signature, reason, at) "
                           "VALUES (?, ?, ?, ?, ?, ?)",
                           (request_id, custodian, decision, signature_b64, reason, now))
                detail: dict[str, Any] = {"custodian": custodian, "signature": signature_b64}
                if reason:
                    detail["reason"] = reason
                auditlog.append(tx, actor=custodian, action=action, request_id=request_id, case_id=req.case,
                                tokens=req.tokens, detail=detail)
                if decision == "deny":
                    tx.execute("UPDATE requests SET status = 'denied', decided_at = ? WHERE id = ?",
                               (now, request_id))
                else:
                    approvers = {d.custodian for d in req.decisions if d.decision == "approve"} | {custodian}
                    quorum = max(req.quorum, self.settings.quorum)
                    if len(approvers) >= quorum:
                        tx.execute("UPDATE requests SET status = 'approved', decided_at = ? WHERE id = ?",
                                   (now, request_id))
                        auditlog.append(tx, actor=custodian, action="request_approved", request_id=request_id,
                                        case_id=req.case, tokens=req.tokens,
                                        detail={"approvers": sorted(approvers), "quorum": quorum})
        except _Refusal as r:
            self._audit_refusal(custodian, action, request_id, r)
            raise ReidRefused(r.message) from None
        return self.get(request_id)

    # -- reveal ----------------------------------------------------------------------------------

    def reveal(self, request_id: str, requester: str, opener: Opener,
               tokens: Sequence[str] | None = None) -> RevealResult:
        """Open the request's tokens (all, or ``tokens``) for its requester, once checks pass."""
        try:
            with self.db.transaction() as tx:
                req = self._load_for_update(tx, request_id)
                ctx = (req.case, req.tokens)
                if requester != req.requester:
                    raise _Refusal("wrong_requester",
                                   "only the investigator who filed the request may reveal it", *ctx)
                wanted = canonical_tokens(tokens) if tokens else req.tokens
                if not set(wanted) <= set(req.tokens):
                    raise _Refusal("token_not_in_request", "a token asked for is not part of this request",
                                   req.case, wanted)
                self._check_revealable(tx, req)
                opened = opener(list(wanted))
                forgotten = self._forgotten(tx, opened.no_entry)
                no_entry = tuple(t for t in opened.no_entry if t not in forgotten)
                unrecoverable = tuple(sorted({*opened.unrecoverable, *forgotten}))
                tx.execute("UPDATE requests SET reveals_used = reveals_used + 1 WHERE id = ?", (request_id,))
                auditlog.append(tx, actor=requester, action="revealed", request_id=request_id,
                                case_id=req.case, tokens=wanted, detail={
                                    "revealed": sorted(opened.values), "no_entry": list(no_entry),
                                    "unrecoverable": list(unrecoverable), "use": req.reveals_used + 1})
        except _Refusal as r:
            self._audit_refusal(requester, "reveal", request_id, r)
            raise ReidRefused(r.message) from None
        except AuditveilError as exc:
            self._audit(requester, "reveal_failed", request_id, detail={"error": type(exc).__name__})
            raise
        return RevealResult(request_id, dict(opened.values), no_entry, unrecoverable)

    def _check_revealable(self, tx: Tx, req: Request) -> None:
        ctx = (req.case, req.tokens)
        if req.status == "denied" or any(d.decision == "deny" for d in req.decisions):
            raise _Refusal("denied", "the request was denied", *ctx)
        if req.expired():
            raise _Refusal("expired", "the request has expired; file a new one", *ctx)
        if request_digest(req.facts()) != req.digest:
            raise _Refusal("tampered_request", "the stored request no longer matches its digest", *ctx)
        quorum = max(req.quorum, self.settings.quorum)
        valid: set[str] = set()
        for d in req.decisions:
            if d.decision != "approve" or d.custodian == req.requester:
                continue
            row = tx.one("SELECT public_key_pem FROM custodians WHERE name = ?", (d.custodian,))
            if row is None:
                continue
            key = signing.load_public_key_pem(str(row[0]).encode("ascii"))
            if signing.verify(key, decision_message(req.digest, "approve"), d.signature):
                valid.add(d.custodian)
        if len(valid) < quorum:
            raise _Refusal("quorum_not_met",
                           f"the request has {len(valid)} valid approval(s) of the {quorum} required", *ctx)
        uses = self.settings.reveal_uses
        if uses and req.reveals_used >= uses:
            raise _Refusal("used_up", "the request has already been revealed as often as allowed "
                           "(reid.reveal_uses)", *ctx)
        window = self.settings.reveal_window_minutes
        if window and req.decided_at:
            if utc_now() > parse_time(req.decided_at) + dt.timedelta(minutes=window):
                raise _Refusal("window_closed", "the reveal window after approval has closed "
                               "(reid.reveal_window_minutes)", *ctx)

    def _forgotten(self, tx: Tx, tokens: Sequence[str]) -> set[str]:
        if not tokens:
            return set()
        wanted, gone = set(tokens), set()
        for (raw,) in tx.all("SELECT tokens FROM audit_log WHERE action = 'lookup_forgotten'"):
            gone |= wanted & set(orjson.loads(raw))
        return gone

    # -- audit -----------------------------------------------------------------------------------

    def _audit_refusal(self, actor: str, attempted: str, request_id: str, r: _Refusal) -> None:
        self._audit(actor, "refused", request_id, case=r.case, tokens=r.tokens,
                    detail={"attempted": attempted, "refusal": r.code})

    def _audit(self, actor: str, action: str, request_id: str = "", *, case: str = "",
               tokens: Sequence[str] = (), detail: dict[str, Any] | None = None) -> None:
        with self.db.transaction() as tx:
            auditlog.append(tx, actor=actor, action=action, request_id=request_id, case_id=case,
                            tokens=tokens, detail=detail)

    def record(self, actor: str, action: str, *, tokens: Sequence[str] = (),
               detail: dict[str, Any] | None = None) -> None:
        """Append an event from outside the workflow (lookup purge/forget, API key changes)."""
        self._audit(actor, action, tokens=tokens, detail=detail)

    def log(self) -> tuple[list[dict[str, Any]], tuple[int, str]]:
        with self.db.transaction(write=False) as tx:
            return auditlog.read_all(tx)

    def verify_log(self, expect_head: str = "") -> auditlog.Verdict:
        records, head = self.log()
        return auditlog.verify_records(records, head, expect_head)
