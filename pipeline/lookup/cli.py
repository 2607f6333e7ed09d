"""``auditveil lookup purge`` and ``auditveil lookup forget``: retention and erasure, audited.

* ``purge --older-than DURATION`` destroys wrapped data keys created before now - DURATION.
  Every lookup entry sealed under them becomes irrecoverable (crypto-shredding); the Parquet
  tokens stay joinable for analysts.
* ``forget TOKEN...`` removes every lookup entry of the given tokens (a data subject's
  erasure request).

Both append a record to the re-identification audit log (``reid.db``) with what was asked
and how much was destroyed; a later reveal of such a token says "no longer recoverable".
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
from typing import Any

from pipeline.config import Settings
from pipeline.errors import AuditveilError, ConfigError
from pipeline.lookup.store import forget_tokens, purge_deks
from pipeline.storage.fs import resolve
from pipeline.tokenise.token_format import parse_token

_DURATION_RE = re.compile(r"(\d+)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}


def parse_duration(text: str) -> dt.timedelta:
    """``90d``, ``12h``, ``2w``, ``30m``, ``45s`` or combinations such as ``1d12h``."""
    text = text.strip().lower()
    if not text or _DURATION_RE.sub("", text):
        raise ConfigError("a duration is a number and a unit s, m, h, d or w, e.g. 90d or 12h")
    seconds = sum(int(n) * _UNITS[u] for n, u in _DURATION_RE.findall(text))
    if seconds <= 0:
        raise ConfigError("the duration must be longer than zero")
    return dt.timedelta(seconds=seconds)


def _lookup_uri(args: argparse.Namespace, settings: Settings) -> str:
    uri = str(args.lookup or settings.reid.lookup)
    if not uri:
        raise ConfigError("no lookup location: pass --lookup or set reid.lookup (AUDITVEIL_REID_LOOKUP)")
    return uri


def _reid(settings: Settings) -> Any:
    from pipeline.reid.db import Database
    from pipeline.reid.workflow import Reid

    return Reid(Database.from_settings(settings.reid), settings.reid)


def _purge(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.reid.cli import cli_actor

    older = parse_duration(args.older_than)
    loc = resolve(_lookup_uri(args, settings), settings.storage)
    reid = _reid(settings)  # open the audit log first: no unaudited destruction
    now = dt.datetime.now(dt.UTC)
    detail: dict[str, Any] = {"older_than": args.older_than,
                              "cutoff": (now - older).strftime("%Y-%m-%dT%H:%M:%SZ")}
    try:
        destroyed = purge_deks(loc, older, now)
    except AuditveilError as exc:
        reid.record(cli_actor(), "lookup_purge_failed", detail={**detail, "error": type(exc).__name__})
        raise
    reid.record(cli_actor(), "lookup_purged", detail={**detail, "deks_destroyed": destroyed})
    print(f"destroyed {destroyed} wrapped data key(s) created before {detail['cutoff']}; "
          "their lookup entries are no longer recoverable")
    return 0


def _forget(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.reid.cli import cli_actor

    tokens = sorted(set(args.tokens))
    if any(parse_token(t) is None for t in tokens):
        raise ConfigError("every token must look like <domain>.k<version>.<26 base32 characters>")
    loc = resolve(_lookup_uri(args, settings), settings.storage)
    reid = _reid(settings)
    try:
        removed = forget_tokens(loc, tokens)
    except AuditveilError as exc:
        reid.record(cli_actor(), "lookup_forget_failed", tokens=tokens, detail={"error": type(exc).__name__})
        raise
    reid.record(cli_actor(), "lookup_forgotten", tokens=tokens, detail={"entries_removed": removed})
    print(f"removed {removed} lookup entr{'y' if removed == 1 else 'ies'} for {len(tokens)} token(s)")
    return 0


def add_commands(subparsers: Any) -> None:
    lk = subparsers.add_parser("lookup", help="retention and erasure of the lookup vault (audited)",
                               description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = lk.add_subparsers(dest="lookup_command", metavar="SUBCOMMAND")
    p = sub.add_parser("purge", help="destroy data keys older than DURATION (crypto-shredding)",
                       description="Destroy the wrapped data keys created more than DURATION ago (e.g. 400d, "
                                   "12w, 36h). Entries sealed under them can never be revealed again.")
    p.add_argument("--older-than", required=True, metavar="DURATION")
    p.add_argument("--lookup", metavar="URI", help="lookup-vault location; default reid.lookup")
    p.set_defaults(func=_purge)
    p = sub.add_parser("forget", help="remove every lookup entry of the given tokens (erasure)",
                       description="Remove every lookup entry of each TOKEN, e.g. for a data subject's "
                                   "erasure request. The tokens stay in the analysts' Parquet.")
    p.add_argument("tokens", nargs="+", metavar="TOKEN")
    p.add_argument("--lookup", metavar="URI", help="lookup-vault location; default reid.lookup")
    p.set_defaults(func=_forget)

    def usage(a: argparse.Namespace, s: Settings) -> int:
        lk.print_help()
        return 2

    lk.set_defaults(func=usage)
