"""Vault / OpenBao audit-device entry → normalised columns (raw values).

An audit entry is ``{"time", "type": "request"|"response", "auth": {…}, "request": {…},
"response": {…}, "error"}``. Request and response entries share ``request.id``; the event id
is ``<request id>:<type>`` so both are kept. Transit operations (``<mount>/encrypt/<key>``,
decrypt, rewrap, datakey, …) give the operation and the key reference; the transit
``context`` (the derivation context, often a customer id) is the encryption context.
Values Vault has already HMAC'd (``hmac-sha256:…``) are handled by the policy's
``vault_hmac`` choice.
"""

from __future__ import annotations

from typing import Any

from pipeline.normalise.flatten import Consumed, get

CONSUMED: Consumed = {
    "time": True, "type": True, "error": True,
    "auth": {"display_name": True, "entity_id": True, "metadata": True, "token_type": True},
    "request": {
        "id": True, "operation": True, "mount_type": True, "mount_point": True, "path": True,
        "remote_address": True, "data": {"context": True}, "headers": {"user-agent": True},
    },
}

_TRANSIT_OPS = frozenset(("encrypt", "decrypt", "rewrap", "datakey", "sign", "verify", "hmac"))


def _operation(req: dict[str, Any]) -> tuple[str | None, str | None]:
    """(operation, key reference) from the request path and operation."""
    path = req.get("path")
    mount_type = req.get("mount_type")
    op = req.get("operation")
    if not isinstance(path, str):
        return (str(op) if op is not None else None), None
    parts = path.strip("/").split("/")
    if len(parts) >= 3 and parts[1] in _TRANSIT_OPS and (mount_type in (None, "transit")):
        verb = parts[1]
        key = parts[3] if verb == "datakey" and len(parts) >= 4 else parts[2]
        return f"transit.{verb}", f"{parts[0]}/{key}"
    if mount_type == "kmip":
        kmip_op = get(req, "data", "operation")
        return f"kmip.{kmip_op or op}", None
    engine = mount_type or parts[0] or "vault"
    return (f"{engine}.{op}" if op is not None else None), None


def normalise(e: dict[str, Any]) -> tuple[dict[str, Any], Consumed]:
    auth_raw, req_raw = e.get("auth"), e.get("request")
    auth: dict[str, Any] = auth_raw if isinstance(auth_raw, dict) else {}
    req: dict[str, Any] = req_raw if isinstance(req_raw, dict) else {}
    entry_type = e.get("type")
    operation, key_ref = _operation(req)
    error = e.get("error")
    request_id = req.get("id")
    context = get(req, "data", "context")
    path = req.get("path")
    ua = get(req, "headers", "user-agent")
    if isinstance(ua, list):
        ua = ua[0] if ua else None
    cols = {
        "event_id": f"{request_id}:{entry_type}" if request_id is not None else None,
        "event_time": e.get("time"),
        "service": req.get("mount_type") or "vault",
        "operation": operation,
        "outcome": "failure" if error else ("success" if entry_type == "response" else None),
        "error_code": error if error else None,
        "region": None,
        "key_ref": key_ref,
        "actor_type": auth.get("token_type"),
        "actor_id": auth.get("entity_id") or None,
        "actor_arn": None,
        "actor_name": auth.get("display_name") or None,
        "actor_account": None,
        "actor_access_key": None,
        "actor_attributes": auth.get("metadata"),
        "source_ip": req.get("remote_address"),
        "user_agent": ua,
        "encryption_context": {"context": context} if context is not None else None,
        "request_id": request_id,
        "read_only": req.get("operation") in ("read", "list") if req.get("operation") else None,
        "resources": [{"type": "vault_path", "ref": path}] if isinstance(path, str) else None,
        "recipient_account": None,
        "event_type": entry_type,
    }
    return cols, CONSUMED
