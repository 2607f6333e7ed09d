"""``auditveil scan``: the leak scanner over an output location."""

from __future__ import annotations

import argparse
from typing import Any

from pipeline.config import Settings

SCAN_HELP = """\
Read every file under --out (pseudonymised events, dead letters, run summaries) and report
anything shaped like an identifier: account-bearing ARNs, AWS access key ids, e-mail
addresses, IPv4/IPv6 addresses, 12-digit account ids. With --originals, also collect every
value of the original inputs that the policy tokenises or generalises and report any output
string that contains one. Findings name the file, column and kind, never the text found.
Exit status: 0 clean, 1 leak found.
"""


def add_commands(sub: Any) -> None:
    p = sub.add_parser("scan", help="check output files for leaked identifiers", description=SCAN_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", metavar="URI", required=True, help="output location to scan (path or s3://)")
    p.add_argument("--originals", metavar="PATH", action="append", default=[],
                   help="original input file or directory (repeatable)")
    p.add_argument("--format", choices=("auto", "cloudtrail", "vault"), default="auto",
                   help="format of the originals (default: detect)")
    p.set_defaults(func=_scan)


def _scan(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.scan.scanner import original_values, scan_location
    from pipeline.storage.fs import resolve

    originals = (
        original_values(args.originals, args.format, settings.pipeline.policy_dir) if args.originals else frozenset()
    )
    report = scan_location(resolve(args.out, settings.storage), originals)
    for (file, column, kind), n in sorted(report.findings.items()):
        print(f"LEAK {kind}: {n} value(s) in {file} column {column}")
    verdict = "clean" if report.clean else f"{sum(report.findings.values())} finding(s)"
    print(f"scanned {report.files} file(s), {report.strings:,} distinct strings"
          + (f", against {len(originals):,} original values" if originals else "") + f": {verdict}")
    return 0 if report.clean else 1
