"""The leak scanner: read every file auditveil wrote and look for identifiers.

Two checks, both over every string a file holds (Parquet cells decoded, including map keys
and values, nested lists and the ``extra`` JSON; other files as text):

1. shapes: account-bearing ARNs, AWS access key ids, e-mail addresses, IPv4/IPv6 addresses,
   12-digit account ids (see patterns.py);
2. originals: given the original inputs, every value the policy tokenises or generalises is
   collected, and any output string that contains one is a leak.

Findings name the file, the column and the pattern — never the matched text.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.scan.patterns import find_identifiers, looks_identifying
from pipeline.storage.fs import Location, list_files, read_bytes

_SPLIT = re.compile(r'[\s"{}\[\],]+')
MIN_ORIGINAL_LEN = 4


@dataclass
class ScanReport:
    files: int = 0
    strings: int = 0
    findings: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (file, column, kind)

    @property
    def clean(self) -> bool:
        return not self.findings


def _string_leaves(arr: pa.Array | pa.ChunkedArray) -> Iterator[pa.Array]:
    if isinstance(arr, pa.ChunkedArray):
        for chunk in arr.chunks:
            yield from _string_leaves(chunk)
        return
    t = arr.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        yield arr
    elif pa.types.is_dictionary(t):
        yield from _string_leaves(arr.dictionary)
    elif pa.types.is_map(t):
        yield from _string_leaves(arr.keys)
        yield from _string_leaves(arr.items)
    elif pa.types.is_list(t) or pa.types.is_large_list(t):
        yield from _string_leaves(arr.flatten())
    elif pa.types.is_struct(t):
        for i in range(t.num_fields):
            yield from _string_leaves(arr.field(i))


def parquet_strings(data: bytes) -> Iterator[tuple[str, str]]:
    """(column, distinct string) for every string leaf of a Parquet file."""
    table = pq.read_table(pa.BufferReader(data))
    for name in table.column_names:
        for leaf in _string_leaves(table.column(name)):
            for value in pc.unique(leaf).to_pylist():
                if value:
                    yield name, value


def _pieces(text: str) -> Iterable[str]:
    yield text
    yield from (p for p in _SPLIT.split(text) if p and p != text)


def scan_strings(report: ScanReport, file: str, items: Iterable[tuple[str, str]],
                 originals: frozenset[str]) -> None:
    for column, text in items:
        report.strings += 1
        for kind, _ in find_identifiers(text):
            report.findings[(file, column, kind)] += 1
        if originals:
            for piece in _pieces(text):
                if piece in originals:
                    report.findings[(file, column, "original_value")] += 1
                    break


def scan_location(loc: Location, originals: frozenset[str] = frozenset()) -> ScanReport:
    report = ScanReport()
    for path in list_files(loc, loc.base):
        rel = path[len(loc.base):].lstrip("/") or path
        data = read_bytes(loc, path)
        report.files += 1
        if path.endswith(".parquet"):
            try:
                items: Iterable[tuple[str, str]] = list(parquet_strings(data))
            except (pa.ArrowInvalid, OSError):
                report.findings[(rel, "-", "unreadable_parquet")] += 1
                continue
        else:
            items = [("-", line) for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
        scan_strings(report, rel, items, originals)
    return report


def _placeholder(*_args: object, **_kwargs: object) -> str:
    return "\x00token"


def original_values(paths: Sequence[str], fmt: str = "auto", policy_dir: str = "") -> frozenset[str]:
    """Every raw value in the original inputs that the policy does not keep in clear."""
    from pipeline.normalise import NORMALISERS, leftovers
    from pipeline.sanitise.generalise import GENERALISERS
    from pipeline.sanitise.policy import Rule, load_policies
    from pipeline.sources.decode import decode
    from pipeline.sources.files import discover, read_task
    from pipeline.sources.records import Record

    policies = load_policies(policy_dir)
    values: set[str] = set()
    kept: set[str] = set()  # values the policy keeps in clear somewhere: never a leak

    def add(v: object) -> None:
        if isinstance(v, str) and len(v) >= MIN_ORIGINAL_LEN:
            values.add(v)
            m = re.search(r"(?<!\d)\d{12}(?!\d)", v)
            if m:
                values.add(m.group(0))

    def add_by_rule(rule: Rule | None, v: object) -> None:
        if rule is not None and rule.action == "keep":
            if isinstance(v, str) and not looks_identifying(v):
                kept.add(v)  # (identifier-shaped kept values are tokenised by the safety net)
            return
        if rule is not None and rule.action == "generalise" and isinstance(v, str):
            if GENERALISERS[rule.generaliser](v, _placeholder) == v:
                kept.add(v)  # kept whole by design (a KMS key id, an AWS service caller, …)
                return
        add(v)

    for task in discover(paths).tasks:
        for item in decode(read_task(task), fmt, task.display):
            if not isinstance(item, Record):
                continue
            policy = policies[item.kind]
            try:
                cols, consumed = NORMALISERS[item.kind](item.payload)
            except (TypeError, ValueError, AttributeError, KeyError):
                continue
            for name, value in cols.items():
                rule = policy.columns.get(name)
                if isinstance(value, dict):
                    for k, v in value.items():
                        if rule is not None and k in rule.keep_values_of:
                            add_by_rule(Rule("keep"), v)
                        else:
                            add_by_rule(rule, v)
                elif isinstance(value, list):
                    for r in value:
                        if isinstance(r, dict):
                            add_by_rule(rule, r.get("ref"))
                else:
                    add_by_rule(rule, value)
            for path, value in leftovers(item.payload, consumed):
                add_by_rule(policy.extra_rule(path), value)
    # A value that the policy legitimately keeps elsewhere (a service name used as a caller)
    # is not a leak: generalisers keep AWS service names and KMS key ids by design.
    return frozenset(v for v in values - kept if not v.endswith(".amazonaws.com") and v != "AWS Internal")
