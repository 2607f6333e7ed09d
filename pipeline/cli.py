"""The ``auditveil`` command: a thin layer that parses options, loads settings and calls in.

Each command group lives beside the code it drives and registers itself through an
``add_commands(subparsers)`` function; every command's handler takes ``(args, settings)`` and
returns an exit code. User mistakes surface as one line on stderr (``auditveil: error: …``)
and a non-zero exit code, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from pipeline import __version__
from pipeline.config import Settings, load_settings
from pipeline.errors import AuditveilError

Handler = Callable[[argparse.Namespace, Settings], int]

# Modules that contribute commands, in the order they appear in --help.
COMMAND_MODULES = (
    "pipeline.run.cli",
    "pipeline.custody.cli",
    "pipeline.scan.cli",
    "pipeline.reid.cli",
    "pipeline.lookup.cli",
    "pipeline.analyst.cli",
    "pipeline.demo",
)

DESCRIPTION = """\
auditveil pseudonymises AWS KMS (CloudTrail) and HashiCorp Vault / OpenBao audit logs.

Every identifier (caller ARNs, user names, access keys, source IPs, encryption-context values)
is replaced by a deterministic token, an HMAC whose key never leaves your HSM. Analysts get
Parquet with tokens; the token -> value lookup is sealed for the custodians, and only a
re-identification request approved by a quorum of custodians can open it.
"""

EPILOG = """\
environment:
  AUDITVEIL_CONFIG               configuration file (TOML), same as --config
  AUDITVEIL_PKCS11_MODULE        PKCS#11 module of the HSM (default: SoftHSM2)
  AUDITVEIL_PKCS11_TOKEN_LABEL   label of the HSM token (default: auditveil)
  AUDITVEIL_PKCS11_PIN           user PIN of the token (or AUDITVEIL_PKCS11_PIN_FILE)
  AUDITVEIL_<SECTION>_<NAME>     any other setting, e.g. AUDITVEIL_REID_DB

exit codes: 0 ok, 1 failure or leak found, 2 bad usage or configuration,
            3 HSM unavailable, 4 storage unavailable, 5 destination refused, 6 refused.

Run `auditveil COMMAND --help` for each command. Docs: README.md and docs/.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="auditveil", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"auditveil {__version__}")
    parser.add_argument("--config", metavar="FILE", help="configuration file (TOML); default $AUDITVEIL_CONFIG")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more (never identifiers)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
                continue  # an optional command group that is not installed
            raise
        add: Any = getattr(module, "add_commands", None)
        if add is not None:
            add(sub)
    return parser


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Libraries log tracebacks that can quote data; auditveil reports their failures itself.
    for noisy in ("apache_beam", "kafka", "botocore", "urllib3", "root"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL + 1)
    for handler in logging.getLogger().handlers:
        handler.addFilter(lambda record: record.name.startswith("pipeline"))
    threading.excepthook = _quiet_thread_failure


def _quiet_thread_failure(args: threading.ExceptHookArgs) -> None:
    """A failed background thread (Beam's runner threads when a worker dies, for example) would
    print a traceback, which can quote data. The run reports the failure itself; this names the
    exception class only, and only with --verbose."""
    logging.getLogger("pipeline.threads").info("a background thread stopped (%s)", args.exc_type.__name__)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    _configure_logging(args.verbose)
    try:
        settings = load_settings(args.config)
        code = int(args.func(args, settings))
    except AuditveilError as exc:
        print(f"auditveil: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("auditveil: interrupted; nothing partial is visible, re-run to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
