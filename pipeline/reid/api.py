"""The re-identification HTTP service (``auditveil serve``): the workflow behind bearer keys.

Every endpoint except ``/healthz`` needs ``Authorization: Bearer <API key>``; the key decides
who the caller is and what they may do (see apikeys.py). Investigators file and reveal their
own requests; custodians approve or deny with a signature made *on their own machine* over
the request's ``approve_message`` / ``deny_message`` (the service never sees a private key).
No endpoint reveals without an approved request: the reveal goes through the same checks as
the CLI. Reveals are rate-limited per caller (``reid.reveal_rate_per_minute``).

The OpenAPI document is served at ``/openapi.json`` (and readable docs at ``/docs``).
"""

# No `from __future__ import annotations`: FastAPI must see the real Annotated[...] objects of
# the dependencies defined inside create_app().

import threading
import time
from collections import deque
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from pipeline import __version__
from pipeline.config import ReidSettings
from pipeline.errors import AuditveilError, ConfigError, ReidRefused
from pipeline.reid.apikeys import Caller, authenticate
from pipeline.reid.workflow import Opener, Reid


class NewRequest(BaseModel):
    case: str = Field(description="Case id, 1-128 letters, digits or . _ : / # + -")
    reason: str = Field(description="Reason and legal basis, one line")
    tokens: list[str] = Field(description="Tokens to re-identify (at most reid.max_tokens)")
    expires_in_hours: int | None = Field(default=None, description="Default: reid.default_expiry_hours")


class Approval(BaseModel):
    signature: str = Field(description="base64 Ed25519 signature over the request's approve_message")


class Denial(BaseModel):
    signature: str = Field(description="base64 Ed25519 signature over the request's deny_message")
    reason: str


class RevealAsk(BaseModel):
    tokens: list[str] | None = Field(default=None,
                                     description="A subset of the request's tokens; default all")


class RevealOut(BaseModel):
    request_id: str
    values: dict[str, str]
    no_entry: list[str]
    unrecoverable: list[str]


class Verification(BaseModel):
    ok: bool
    records: int
    head: str
    problem: str


class RateLimiter:
    """At most ``per_minute`` events per key in any sliding 60 s."""

    def __init__(self, per_minute: int) -> None:
        self._per_minute = per_minute
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        with self._lock:
            q = self._events.setdefault(key, deque())
            while q and now - q[0] >= 60:
                q.popleft()
            if len(q) >= self._per_minute:
                return False
            q.append(now)
            return True


def create_app(reid: Reid, opener: Opener, settings: ReidSettings) -> FastAPI:
    app = FastAPI(
        title="auditveil re-identification service", version=__version__,
        description="Custodian-approved re-identification of auditveil tokens. Every call needs a bearer "
                    "API key bound to one identity and role (investigator or custodian).",
    )
    bearer = HTTPBearer(auto_error=False)
    limiter = RateLimiter(settings.reveal_rate_per_minute)

    def caller(creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Caller:
        if creds is None or creds.scheme.lower() != "bearer":
            raise HTTPException(401, "missing bearer API key", headers={"WWW-Authenticate": "Bearer"})
        who = authenticate(reid.db, creds.credentials)
        if who is None:
            raise HTTPException(401, "invalid or revoked API key", headers={"WWW-Authenticate": "Bearer"})
        return who

    def investigator(who: Annotated[Caller, Depends(caller)]) -> Caller:
        if who.role != "investigator":
            raise HTTPException(403, "this operation is for investigators")
        return who

    def custodian(who: Annotated[Caller, Depends(caller)]) -> Caller:
        if who.role != "custodian":
            raise HTTPException(403, "this operation is for custodians")
        return who

    @app.exception_handler(AuditveilError)
    async def _refused(_: Request, exc: AuditveilError) -> JSONResponse:
        if isinstance(exc, ReidRefused):
            status = 404 if "no request with this id" in str(exc) else 409
        elif isinstance(exc, ConfigError):
            status = 422
        else:
            status = 503
        return JSONResponse({"detail": str(exc), "error": type(exc).__name__}, status_code=status)

    @app.get("/healthz", summary="Liveness (no authentication)")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/whoami", summary="The identity and role of the API key")
    def whoami(who: Annotated[Caller, Depends(caller)]) -> dict[str, str]:
        return {"identity": who.identity, "role": who.role}

    @app.post("/v1/requests", status_code=201, summary="File a re-identification request (investigator)")
    def file_request(body: NewRequest, who: Annotated[Caller, Depends(investigator)]) -> dict[str, Any]:
        req = reid.file_request(case=body.case, reason=body.reason, requester=who.identity,
                                tokens=body.tokens, expires_in_hours=body.expires_in_hours)
        return req.public()

    @app.get("/v1/requests", summary="List requests (custodians: all; investigators: their own)")
    def list_requests(who: Annotated[Caller, Depends(caller)]) -> list[dict[str, Any]]:
        return [r.public() for r in reid.requests() if who.role == "custodian" or r.requester == who.identity]

    @app.get("/v1/requests/{request_id}", summary="One request, with the exact messages custodians sign")
    def get_request(request_id: str, who: Annotated[Caller, Depends(caller)]) -> dict[str, Any]:
        req = reid.get(request_id)
        if who.role != "custodian" and req.requester != who.identity:
            raise HTTPException(404, "there is no request with this id")
        return req.public()

    @app.post("/v1/requests/{request_id}/approve", summary="Approve with a signature (custodian)")
    def approve(request_id: str, body: Approval,
                who: Annotated[Caller, Depends(custodian)]) -> dict[str, Any]:
        return reid.approve(request_id, who.identity, body.signature).public()

    @app.post("/v1/requests/{request_id}/deny", summary="Deny with a signature and a reason (custodian)")
    def deny(request_id: str, body: Denial, who: Annotated[Caller, Depends(custodian)]) -> dict[str, Any]:
        return reid.deny(request_id, who.identity, body.signature, body.reason).public()

    @app.post("/v1/requests/{request_id}/reveal", response_model=RevealOut,
              summary="Reveal an approved request's tokens (its requester only; rate-limited)",
              responses={429: {"description": "too many reveals"}})
    def reveal(request_id: str, who: Annotated[Caller, Depends(investigator)],
               body: RevealAsk | None = None) -> RevealOut:
        if not limiter.allow(who.key_id):
            raise HTTPException(429, "too many reveals; wait a minute", headers={"Retry-After": "60"})
        res = reid.reveal(request_id, who.identity, opener, body.tokens if body else None)
        return RevealOut(request_id=res.request_id, values=res.values, no_entry=list(res.no_entry),
                         unrecoverable=list(res.unrecoverable))

    @app.get("/v1/log", summary="The audit log as records (custodian)")
    def log(who: Annotated[Caller, Depends(custodian)]) -> list[dict[str, Any]]:
        return reid.log()[0]

    @app.get("/v1/log/verify", response_model=Verification, summary="Verify the hash chain (custodian)")
    def verify(who: Annotated[Caller, Depends(custodian)], expect_head: str = "") -> Verification:
        v = reid.verify_log(expect_head)
        return Verification(ok=v.ok, records=v.records, head=f"{v.head_seq}:{v.head_hash}", problem=v.problem)

    return app
