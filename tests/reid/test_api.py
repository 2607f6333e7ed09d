"""The HTTP service over real HTTP: uvicorn on 127.0.0.1 (ephemeral port), httpx as the client."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pipeline.config import Settings
from pipeline.reid import apikeys, signing
from pipeline.reid.api import create_app
from pipeline.reid.db import Database
from pipeline.reid.reveal import lookup_opener
from pipeline.reid.workflow import Reid
from tests.reid.conftest import CliRunner
from tests.reid.helpers import Vault, pub_pem, reid_settings

Keys = dict[str, Ed25519PrivateKey]


@dataclass
class Service:
    url: str
    reid: Reid
    keys: dict[str, str]  # "<identity>/<role>" -> bearer key

    def client(self, who: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.keys[who]}"} if who else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


@pytest.fixture()
def service(tmp_path: Path, settings: Settings, vault: Vault, keys: Keys) -> Iterator[Service]:
    s = reid_settings(settings, reveal_rate_per_minute=3)
    db = Database(str(tmp_path / "reid.sqlite3"))
    reid = Reid(db, s.reid)
    for name in ("alice", "bob", "ivan"):
        reid.enrol_custodian(name, pub_pem(keys[name]), "test-admin")
    api_keys = {}
    for ident, role in (("ivan", "investigator"), ("olga", "investigator"), ("alice", "custodian"),
                        ("bob", "custodian"), ("ivan", "custodian")):
        api_keys[f"{ident}/{role}"] = apikeys.add_key(db, ident, role, "test-admin")[1]
    revoked_id, revoked = apikeys.add_key(db, "rex", "investigator", "test-admin")
    apikeys.revoke_key(db, revoked_id, "test-admin")
    api_keys["rex/revoked"] = revoked
    app = create_app(reid, lookup_opener(vault.uri, s.pkcs11), s.reid)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            pytest.fail("the service did not start")
        time.sleep(0.02)
    try:
        yield Service(f"http://127.0.0.1:{port}", reid, api_keys)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        db.close()


def _file(svc: Service, vault: Vault, who: str = "ivan/investigator") -> dict[str, object]:
    with svc.client(who) as c:
        r = c.post("/v1/requests", json={"case": "INC-77", "reason": "credential stuffing; Art. 6(1)(f)",
                                         "tokens": list(vault.values)})
    assert r.status_code == 201, r.text
    return dict(r.json())


def _approve(svc: Service, keys: Keys, rid: str, custodian: str, decision: str = "approve",
             **extra: str) -> httpx.Response:
    with svc.client(f"{custodian}/custodian") as c:
        req = c.get(f"/v1/requests/{rid}").json()
        signature = signing.sign(keys[custodian], req[f"{decision}_message"].encode("ascii"))
        return c.post(f"/v1/requests/{rid}/{decision}", json={"signature": signature, **extra})


def test_full_flow_over_http(service: Service, vault: Vault, keys: Keys) -> None:
    req = _file(service, vault)
    assert req["status"] == "pending" and req["requester"] == "ivan"
    assert req["approve_message"] == f"auditveil-reid/v1:approve:{req['digest']}"
    with service.client("ivan/investigator") as c:
        assert c.post(f"/v1/requests/{req['id']}/reveal").status_code == 409  # no approvals yet
    assert _approve(service, keys, str(req["id"]), "alice").json()["status"] == "pending"
    assert _approve(service, keys, str(req["id"]), "bob").json()["status"] == "approved"
    with service.client("ivan/investigator") as c:
        r = c.post(f"/v1/requests/{req['id']}/reveal")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["values"] == vault.values and body["no_entry"] == [] and body["unrecoverable"] == []
        again = c.post(f"/v1/requests/{req['id']}/reveal")
        assert again.status_code == 409 and "as often as allowed" in again.json()["detail"]
    with service.client("alice/custodian") as c:
        v = c.get("/v1/log/verify").json()
        assert v["ok"] is True and v["records"] > 5
        log = c.get("/v1/log").json()
        assert log[-2]["action"] == "revealed" and log[-2]["actor"] == "ivan"
        assert not any(value in str(log) for value in vault.values.values())


def test_authentication_failures(service: Service, vault: Vault) -> None:
    req = _file(service, vault)
    key = service.keys["ivan/investigator"]
    key_id = key.split("_")[1]
    bad = {
        "no header": {},
        "not bearer": {"Authorization": f"Basic {key}"},
        "garbage": {"Authorization": "Bearer nonsense"},
        "unknown id": {"Authorization": f"Bearer avk_{'0' * 16}_{key.split('_', 2)[2]}"},
        "wrong secret": {"Authorization": f"Bearer avk_{key_id}_{'A' * 43}"},
        "revoked": {"Authorization": f"Bearer {service.keys['rex/revoked']}"},
    }
    with httpx.Client(base_url=service.url, timeout=30) as c:
        assert c.get("/healthz").status_code == 200
        for label, headers in bad.items():
            for method, path in (("GET", "/v1/requests"), ("POST", f"/v1/requests/{req['id']}/reveal"),
                                 ("GET", "/v1/log")):
                r = c.request(method, path, headers=headers)
                assert r.status_code == 401, (label, path, r.status_code)
                assert r.headers.get("www-authenticate") == "Bearer"


def test_every_documented_endpoint_needs_a_key(service: Service) -> None:
    """Walk the OpenAPI document: every operation except /healthz answers 401 without a key."""
    with httpx.Client(base_url=service.url, timeout=30) as c:
        doc = c.get("/openapi.json").json()
        assert doc["info"]["title"].startswith("auditveil")
        assert "HTTPBearer" in doc["components"]["securitySchemes"]
        paths = doc["paths"]
        assert {"/v1/requests", "/v1/requests/{request_id}/approve", "/v1/requests/{request_id}/reveal",
                "/v1/log/verify"} <= set(paths)
        checked = 0
        for path, ops in paths.items():
            for method in ops:
                r = c.request(method.upper(), path.replace("{request_id}", "req-0000000000000000"), json={})
                if path == "/healthz":
                    assert r.status_code == 200
                else:
                    assert r.status_code == 401, (method, path)
                    checked += 1
        assert checked >= 9


def test_roles_and_ownership(service: Service, vault: Vault, keys: Keys) -> None:
    req = _file(service, vault)
    rid = str(req["id"])
    with service.client("alice/custodian") as c:  # custodians do not file or reveal
        new = {"case": "X", "reason": "y", "tokens": list(vault.values)}
        assert c.post("/v1/requests", json=new).status_code == 403
        assert c.post(f"/v1/requests/{rid}/reveal").status_code == 403
    with service.client("ivan/investigator") as c:  # investigators do not approve or read the log
        assert c.post(f"/v1/requests/{rid}/approve", json={"signature": "AAAA"}).status_code == 403
        assert c.get("/v1/log").status_code == 403
    with service.client("olga/investigator") as c:  # another investigator cannot see or reveal it
        assert c.get(f"/v1/requests/{rid}").status_code == 404
        assert all(r["id"] != rid for r in c.get("/v1/requests").json())
    assert _approve(service, keys, rid, "alice").status_code == 200
    assert _approve(service, keys, rid, "bob").status_code == 200
    with service.client("olga/investigator") as c:
        r = c.post(f"/v1/requests/{rid}/reveal")
        assert r.status_code == 409 and "only the investigator who filed" in r.json()["detail"]


def test_refusals_over_http(service: Service, vault: Vault, keys: Keys) -> None:
    rid = str(_file(service, vault)["id"])
    self_approval = _approve(service, keys, rid, "ivan")  # ivan's custodian key on ivan's request
    assert self_approval.status_code == 409 and "own request" in self_approval.json()["detail"]
    with service.client("alice/custodian") as c:
        r = c.post(f"/v1/requests/{rid}/approve", json={"signature": signing.sign(keys["bob"], b"x")})
        assert r.status_code == 409 and "does not verify" in r.json()["detail"]
        assert c.get("/v1/requests/req-doesnotexist").status_code == 404
    assert _approve(service, keys, rid, "alice").status_code == 200
    assert _approve(service, keys, rid, "alice").status_code == 409  # duplicate
    denial = _approve(service, keys, rid, "bob", "deny", reason="disproportionate")
    assert denial.status_code == 200 and denial.json()["status"] == "denied"
    with service.client("ivan/investigator") as c:
        assert c.post(f"/v1/requests/{rid}/reveal").status_code == 409
        bad = c.post("/v1/requests", json={"case": "X 1", "reason": "y", "tokens": ["not-a-token"]})
        assert bad.status_code == 422
    with service.client("alice/custodian") as c:
        assert c.get("/v1/log/verify").json()["ok"] is True


def test_reveal_rate_limit(service: Service, vault: Vault) -> None:
    rid = str(_file(service, vault)["id"])
    with service.client("ivan/investigator") as c:
        codes = [c.post(f"/v1/requests/{rid}/reveal").status_code for _ in range(4)]
    assert codes == [409, 409, 409, 429]


def test_serve_refuses_without_credentials(run_cli: CliRunner) -> None:
    code, _, err = run_cli("serve", "--lookup", "/nonexistent")
    assert code == 2 and "without credentials" in err
    run_cli("reid", "apikey", "add", "ivan", "--role", "investigator")
    code, _, err = run_cli("serve", "--host", "0.0.0.0", "--lookup", "/nonexistent")  # noqa: S104
    assert code == 2 and "plain HTTP" in err


def test_apikey_cli_stores_only_a_hash(run_cli: CliRunner, tmp_path: Path) -> None:
    code, out, err = run_cli("reid", "apikey", "add", "alice", "--role", "custodian")
    assert code == 0 and out.startswith("avk_") and "shown once" in err
    key = out.strip()
    db_bytes = (tmp_path / "state" / "reid.sqlite3").read_bytes()
    wal = tmp_path / "state" / "reid.sqlite3-wal"
    if wal.exists():
        db_bytes += wal.read_bytes()
    assert key.split("_", 2)[2].encode() not in db_bytes
    code, out, _ = run_cli("reid", "apikey", "list")
    key_id = key.split("_")[1]
    assert key_id in out and "custodian" in out and "active" in out and key not in out
    assert run_cli("reid", "apikey", "revoke", key_id)[0] == 0
    assert "revoked" in run_cli("reid", "apikey", "list")[1]
    code, _, _ = run_cli("reid", "apikey", "add", "bob", "--role", "custodian", "--out", str(tmp_path / "k"))
    assert code == 0 and (tmp_path / "k").stat().st_mode & 0o777 == 0o600
