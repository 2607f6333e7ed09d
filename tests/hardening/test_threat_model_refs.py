"""docs/threat-model.md names a test for every threat: each one must exist (and so runs in CI)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "threat-model.md"
REF = re.compile(r"`(?:([a-z0-9_/]+\.py))?::(test_[a-z0-9_]+)(?:\[[^\]`]*\])?`")


def _references() -> list[tuple[str, str]]:
    refs: list[tuple[str, str]] = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        current = ""
        for file, test in REF.findall(line):
            current = file or current
            assert current, f"a ::{test} reference without a file before it"
            refs.append((current, test))
    return refs


def test_every_referenced_test_exists() -> None:
    refs = _references()
    assert len(refs) > 60
    missing = [f"{file}::{test}" for file, test in refs
               if not (ROOT / "tests" / file).is_file()
               or not re.search(rf"^def {test}\(", (ROOT / "tests" / file).read_text(), re.MULTILINE)]
    assert missing == []


def test_every_threat_row_names_a_test() -> None:
    rows = [line for line in DOC.read_text(encoding="utf-8").splitlines() if re.match(r"\| [IKLSRA]\d+ \|", line)]
    assert len(rows) >= 30
    untested = [row.split("|")[1].strip() for row in rows if not REF.search(row) and "scripts/audit-deps" not in row]
    assert untested == []
