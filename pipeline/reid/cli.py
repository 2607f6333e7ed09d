"""``auditveil reid …`` and ``auditveil serve``: re-identification from the command line.

The commands work on the state database (``reid.db``: SQLite by default, PostgreSQL for a
shared service). Refusals print one line and exit with code 6; every step, refused or not,
is in the audit log (``auditveil reid log --verify``).
"""

from __future__ import annotations

import argparse
import getpass
import ipaddress
import sys
from pathlib import Path
from typing import Any

import orjson

from pipeline.config import Settings, read_secret_file, write_secret_file
from pipeline.errors import ConfigError
from pipeline.reid import apikeys, auditlog, signing
from pipeline.reid.db import Database
from pipeline.reid.digest import decision_message, request_digest
from pipeline.reid.workflow import Reid, Request

RAW = argparse.RawDescriptionHelpFormatter


def _open(settings: Settings) -> Reid:
    return Reid(Database.from_settings(settings.reid), settings.reid)


def cli_actor() -> str:
    """Who ran an administrative command: the operating-system account."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # pragma: no cover - no passwd entry
        return "cli:unknown"


def _out(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n")


def _summary(req: Request) -> str:
    return (f"request {req.id}  case {req.case}  requester {req.requester}  status {req.shown_status()}\n"
            f"  reason: {req.reason}\n  tokens: {len(req.tokens)}  approvals: "
            f"{sum(d.decision == 'approve' for d in req.decisions)}/{req.quorum}  expires {req.expires_at}\n"
            f"  digest: {req.digest}")


# -- handlers ------------------------------------------------------------------------------------

def _custodian_add(args: argparse.Namespace, settings: Settings) -> int:
    try:
        pem = Path(args.public_key).read_bytes()
    except OSError:
        raise ConfigError("the public key file does not exist or cannot be read") from None
    fp = _open(settings).enrol_custodian(args.name, pem, cli_actor())
    print(f"enrolled custodian {args.name}, key fingerprint sha256:{fp}")
    return 0


def _custodian_list(args: argparse.Namespace, settings: Settings) -> int:
    for c in _open(settings).custodians():
        print(f"{c['name']}\tsha256:{c['fingerprint']}\tenrolled {c['enrolled_at']}")
    return 0


def _keygen(args: argparse.Namespace, settings: Settings) -> int:
    priv, pub = Path(f"{args.prefix}.key.pem"), Path(f"{args.prefix}.pub.pem")
    fp = signing.generate(priv, pub)
    print(f"private key {priv} (keep it; mode 0600), public key {pub}, fingerprint sha256:{fp}")
    return 0


def _request(args: argparse.Namespace, settings: Settings) -> int:
    req = _open(settings).file_request(case=args.case, reason=args.reason, requester=args.requester,
                                       tokens=args.tokens, expires_in_hours=args.expires_in)
    print(req.id)
    return 0


def _show(args: argparse.Namespace, settings: Settings) -> int:
    req = _open(settings).get(args.request_id)
    if args.json:
        _out(req.public())
    else:
        print(_summary(req))
        for t in req.tokens:
            print(f"  {t}")
    return 0


def _list(args: argparse.Namespace, settings: Settings) -> int:
    reqs = _open(settings).requests()
    if args.json:
        _out([r.public() for r in reqs])
        return 0
    for r in reqs:
        approvals = sum(d.decision == "approve" for d in r.decisions)
        print(f"{r.id}\t{r.shown_status()}\tcase {r.case}\trequester {r.requester}\t"
              f"{len(r.tokens)} token(s)\t{approvals}/{r.quorum} approvals\texpires {r.expires_at}")
    return 0


def _decide(args: argparse.Namespace, settings: Settings, decision: str) -> int:
    reid = _open(settings)
    key = signing.read_signing_key_file(args.signing_key)
    req = reid.get(args.request_id)
    print(_summary(req), file=sys.stderr)
    # Sign what this command computed from the request's facts, not the digest stored beside them.
    signature = signing.sign(key, decision_message(request_digest(req.facts()), decision))
    if decision == "approve":
        req = reid.approve(args.request_id, args.custodian, signature)
        print(f"approved by {args.custodian}; request is {req.shown_status()} "
              f"({sum(d.decision == 'approve' for d in req.decisions)}/{req.quorum} approvals)")
    else:
        req = reid.deny(args.request_id, args.custodian, signature, args.reason)
        print(f"denied by {args.custodian}; request is {req.shown_status()}")
    return 0


def _sign(args: argparse.Namespace, settings: Settings) -> int:
    key = signing.read_signing_key_file(args.signing_key)
    message = args.message.strip().encode("ascii", "strict")
    parts = message.split(b":")
    if len(parts) != 3 or parts[0] != b"auditveil-reid/v1" or parts[1] not in (b"approve", b"deny"):
        raise ConfigError("the message must be a request's approve_message or deny_message")
    print(signing.sign(key, message))
    return 0


def _reveal(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.reid.reveal import lookup_opener

    opener = lookup_opener(args.lookup or settings.reid.lookup, settings.pkcs11, settings.storage)
    res = _open(settings).reveal(args.request_id, args.requester, opener, args.tokens or None)
    _out(res.values)
    for t in res.no_entry:
        print(f"auditveil: {t}: no lookup entry (never seen by the pipeline, or another lookup location)",
              file=sys.stderr)
    for t in res.unrecoverable:
        print(f"auditveil: {t}: no longer recoverable (its lookup entry was purged or forgotten)",
              file=sys.stderr)
    return 0


def _log(args: argparse.Namespace, settings: Settings) -> int:
    if args.file:
        try:
            with open(args.file, "rb") as fh:
                verdict = auditlog.verify_lines(fh, args.expect_head)
        except OSError:
            raise ConfigError("the exported log file cannot be read") from None
        print(verdict.summary())
        return 0 if verdict.ok else 1
    reid = _open(settings)
    if args.verify:
        verdict = reid.verify_log(args.expect_head)
        print(verdict.summary())
        return 0 if verdict.ok else 1
    records, _ = reid.log()
    for rec in records:
        if rec.get("_unreadable"):
            print(f'{{"seq":{rec["seq"]},"unreadable":true}}')
        else:
            sys.stdout.write(auditlog.record_line(rec).decode("utf-8") + "\n")
    return 0


def _apikey_add(args: argparse.Namespace, settings: Settings) -> int:
    reid = _open(settings)
    key_id, key = apikeys.add_key(reid.db, args.identity, args.role, cli_actor())
    print(f"API key {key_id} for {args.identity} ({args.role}); it is shown once, store it now:",
          file=sys.stderr)
    if args.out:
        write_secret_file(Path(args.out), (key + "\n").encode(), "API key")
        print(f"written to {args.out}", file=sys.stderr)
    else:
        print(key)
    return 0


def _apikey_list(args: argparse.Namespace, settings: Settings) -> int:
    for k in apikeys.list_keys(_open(settings).db):
        state = f"revoked {k['revoked_at']}" if k["revoked_at"] else "active"
        print(f"{k['key_id']}\t{k['identity']}\t{k['role']}\tcreated {k['created_at']}\t{state}")
    return 0


def _apikey_revoke(args: argparse.Namespace, settings: Settings) -> int:
    apikeys.revoke_key(_open(settings).db, args.key_id, cli_actor())
    print(f"revoked API key {args.key_id}")
    return 0


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from pipeline.reid.api import create_app
    from pipeline.reid.reveal import lookup_opener

    reid = _open(settings)
    if apikeys.active_key_count(reid.db) == 0:
        raise ConfigError("refusing to start without credentials: create API keys first with "
                          "`auditveil reid apikey add NAME --role investigator|custodian`")
    try:
        loopback = ipaddress.ip_address(args.host).is_loopback
    except ValueError:
        loopback = args.host == "localhost"
    tls = bool(args.tls_cert and args.tls_key)
    if args.tls_key:
        read_secret_file(args.tls_key, "TLS private key")  # exists and is owner-only
    if not loopback and not tls:
        raise ConfigError("refusing to serve API keys over plain HTTP on a non-loopback address; "
                          "pass --tls-cert and --tls-key (or put a TLS proxy in front on 127.0.0.1)")
    opener = lookup_opener(args.lookup or settings.reid.lookup, settings.pkcs11, settings.storage)
    custodians = len(reid.custodians())
    if custodians < settings.reid.quorum:
        print(f"auditveil: warning: {custodians} custodian(s) enrolled, quorum is {settings.reid.quorum}: "
              "no request can be approved yet", file=sys.stderr)
    app = create_app(reid, opener, settings.reid)
    print(f"auditveil: serving re-identification on {'https' if tls else 'http'}://{args.host}:{args.port} "
          f"(state: {reid.db.describe()})", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False,
                ssl_certfile=args.tls_cert or None, ssl_keyfile=args.tls_key or None)
    return 0


# -- parser --------------------------------------------------------------------------------------

REID_HELP = """\
Re-identification: an investigator files a request for some tokens, a quorum of custodians
(reid.quorum, default 2; never the requester) approves it with Ed25519 signatures, and only
then may the requester reveal the original values, before expiry and within the allowed
uses. Every step goes to a hash-chained audit log.

workflow:
  auditveil reid keygen alice                          # each custodian, on their own machine
  auditveil reid custodian add alice --public-key alice.pub.pem
  auditveil reid request --case INC-42 --reason "..." --requester ivan prn.k1.… ip.k1.…
  auditveil reid approve req-… --custodian alice --signing-key alice.key.pem
  auditveil reid approve req-… --custodian bob --signing-key bob.key.pem
  auditveil reid reveal req-… --requester ivan --lookup ./out/lookup
  auditveil reid log --verify
"""


def add_commands(subparsers: Any) -> None:
    reid = subparsers.add_parser("reid", help="re-identification requests, approvals, reveals, audit log",
                                 description=REID_HELP, formatter_class=RAW)
    sub = reid.add_subparsers(dest="reid_command", metavar="SUBCOMMAND")

    cust = sub.add_parser("custodian", help="enrol and list custodians")
    csub = cust.add_subparsers(dest="custodian_command", metavar="SUBCOMMAND")
    p = csub.add_parser("add", help="enrol a custodian with an Ed25519 public key",
                        description=(
            "Enrol NAME with the Ed25519 public key in a PEM file "
            "(SubjectPublicKeyInfo, e.g. from `openssl pkey -in key.pem -pubout`). "
            "Compare the printed fingerprint with the custodian out of band."))
    p.add_argument("name", metavar="NAME")
    p.add_argument("--public-key", required=True, metavar="PEM", help="public key file")
    p.set_defaults(func=_custodian_add)
    p = csub.add_parser("list", help="list enrolled custodians and their key fingerprints")
    p.set_defaults(func=_custodian_list)

    p = sub.add_parser("keygen", help="create an Ed25519 key pair for a custodian",
                       description=(
            "Write PREFIX.key.pem (PKCS#8, mode 0600) and PREFIX.pub.pem. Same as "
            "`openssl genpkey -algorithm ed25519 -out PREFIX.key.pem` and `openssl "
            "pkey -in PREFIX.key.pem -pubout -out PREFIX.pub.pem`."))
    p.add_argument("prefix", metavar="PREFIX")
    p.set_defaults(func=_keygen)

    p = sub.add_parser("request", help="file a re-identification request; prints its id",
                       description=(
            "File a request to re-identify TOKENs for a case. Prints the request "
            "id."))
    p.add_argument("--case", required=True, metavar="ID", help="case or ticket id")
    p.add_argument("--reason", required=True, metavar="TEXT", help="reason and legal basis")
    p.add_argument("--requester", required=True, metavar="NAME", help="the investigator filing it")
    p.add_argument("--expires-in", type=int, metavar="HOURS", help="default: reid.default_expiry_hours")
    p.add_argument("tokens", nargs="+", metavar="TOKEN")
    p.set_defaults(func=_request)

    p = sub.add_parser("show", help="show one request and the digest custodians sign")
    p.add_argument("request_id", metavar="REQUEST_ID")
    p.add_argument("--json", action="store_true", help="as JSON, with approve_message and deny_message")
    p.set_defaults(func=_show)

    for name, helptext in (("approve", "approve a request with your signing key"),
                           ("deny", "deny a request with your signing key (ends it)")):
        p = sub.add_parser(name, help=helptext,
                           description=(
             f"{helptext.capitalize()}: signs the request's canonical digest with the "
             f"Ed25519 private key in PEM (owner-only file; an encrypted PEM reads "
             f"its passphrase from ${signing.PASSPHRASE_ENV})."))
        p.add_argument("request_id", metavar="REQUEST_ID")
        p.add_argument("--custodian", required=True, metavar="NAME")
        p.add_argument("--signing-key", required=True, metavar="PEM")
        if name == "deny":
            p.add_argument("--reason", required=True, metavar="TEXT")
        p.set_defaults(func=(lambda a, s, d=name: _decide(a, s, d)))

    p = sub.add_parser("sign", help="sign a request's approve/deny message for the HTTP service",
                       description=(
            "Print the base64 Ed25519 signature of MESSAGE (a request's "
            "approve_message or deny_message from GET /v1/requests/ID) for POSTing "
            "to the service."))
    p.add_argument("message", metavar="MESSAGE")
    p.add_argument("--signing-key", required=True, metavar="PEM")
    p.set_defaults(func=_sign)

    p = sub.add_parser("reveal", help="reveal an approved request's tokens (its requester only)",
                       description=(
            "Print a JSON object token -> original value for an approved request. "
            "Tokens without a lookup entry, or whose entries were purged or "
            "forgotten, are reported on stderr. Needs the HSM (the custodians' key "
            "unwraps the data keys)."))
    p.add_argument("request_id", metavar="REQUEST_ID")
    p.add_argument("--requester", required=True, metavar="NAME")
    p.add_argument("--lookup", metavar="URI", help="lookup-vault location; default reid.lookup")
    p.add_argument("tokens", nargs="*", metavar="TOKEN",
                   help="a subset of the request's tokens (default all)")
    p.set_defaults(func=_reveal)

    p = sub.add_parser("list", help="list requests and their status")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_list)

    p = sub.add_parser("log", help="print or verify the hash-chained audit log",
                       description=(
            "Print the audit log, one canonical JSON record per line; with "
            "--verify, check the hash chain and print the head (SEQ:HASH): keep it "
            "somewhere the database administrator cannot write and pass it back "
            "with --expect-head. With --file, verify an exported log byte for byte. "
            "Exit 1 if broken."))
    p.add_argument("--verify", action="store_true")
    p.add_argument("--expect-head", default="", metavar="SEQ:HASH", help="a head recorded earlier")
    p.add_argument("--file", metavar="FILE", help="verify this exported log instead of the database")
    p.set_defaults(func=_log)

    ak = sub.add_parser("apikey", help="API keys for `auditveil serve`")
    asub = ak.add_subparsers(dest="apikey_command", metavar="SUBCOMMAND")
    p = asub.add_parser("add", help="create a bearer API key bound to one identity and role",
                        description=(
            "Create an API key for IDENTITY with ROLE; it is printed (or written to "
            "--out, mode 0600) once and only its hash is stored."))
    p.add_argument("identity", metavar="IDENTITY")
    p.add_argument("--role", required=True, choices=apikeys.ROLES)
    p.add_argument("--out", metavar="FILE",
                   help="write the key to this new owner-only file instead of stdout")
    p.set_defaults(func=_apikey_add)
    p = asub.add_parser("list", help="list API keys (never the keys themselves)")
    p.set_defaults(func=_apikey_list)
    p = asub.add_parser("revoke", help="revoke an API key by its id")
    p.add_argument("key_id", metavar="KEY_ID")
    p.set_defaults(func=_apikey_revoke)

    for parser in (reid, cust, ak):
        parser.set_defaults(func=lambda a, s, parser=parser: _usage(parser))

    p = subparsers.add_parser("serve", help="run the re-identification HTTP service",
                              description=(
            "Serve the re-identification API (FastAPI; OpenAPI at /openapi.json). "
            "Refuses to start without API keys, and refuses plain HTTP on a "
            "non-loopback address."), formatter_class=RAW)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8470)
    p.add_argument("--lookup", metavar="URI", help="lookup-vault location; default reid.lookup")
    p.add_argument("--tls-cert", metavar="PEM")
    p.add_argument("--tls-key", metavar="PEM")
    p.set_defaults(func=_serve)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2
