"""Apply the field policy to normalised records: the only place raw values become output values.

For each record: normalise (per-source adapter) → for each schema column apply the column rule
(keep / tokenise / generalise / drop; not named = drop) → walk the leftover source fields and
apply the ``[extra]`` allow-list (not named = drop, counted) → one output row. Values a policy
*keeps* still pass a safety net: anything shaped like an identifier (e-mail, IP, ARN with an
account, access key id, account id) is tokenised in domain ``xtr`` instead, and counted.

Each rule is applied once per *distinct* value: a bounded memo per (policy, column) remembers
the output cell and the counts the rule produced for it (so counts stay per occurrence), and
repeated values — principals, IPs, customer ids, key ARNs — cost one dictionary lookup. The
rule logic itself exists once, in ``_value``.

Rows accumulate column-wise and come out as one Arrow table per batch, with the partition
columns ``source`` and ``event_date`` appended. Tokens minted on the way are left on the
tokeniser's ``pending`` list for the lookup vault.
"""

from __future__ import annotations

import datetime as dt
import operator
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.normalise import NORMALISERS, leftovers
from pipeline.sanitise.generalise import GENERALISERS
from pipeline.sanitise.policy import DROP, Policy, Rule
from pipeline.scan.patterns import looks_identifying, maybe_identifying
from pipeline.schema import COLUMNS, EVENT_SCHEMA, MAP_COLUMNS, NULL_PARTITION
from pipeline.sources.records import Record, Rejected
from pipeline.tokenise.tokeniser import Tokeniser

_SAFE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_:.\-]{0,63}$")
_VAULT_HMAC_PREFIX = "hmac-sha256:"
# Domains whose token label includes the field name, so customer_id in a context column and in
# an extra field get the same token.
_SUBJECT_MAP_DOMAINS = frozenset(("ctx", "meta"))
_NORMALISE_FAILURES = (TypeError, ValueError, AttributeError, KeyError, RecursionError, OverflowError)
_STRING_COLUMNS = tuple(
    c for c in COLUMNS if c not in MAP_COLUMNS and c not in ("event_time", "read_only", "resources", "extra")
)
_KEEP = Rule("keep")
_BATCH_SCHEMA = EVENT_SCHEMA.append(pa.field("source", pa.string())).append(pa.field("event_date", pa.string()))
# Kept values (and what generalisers keep) are checked by the safety net once per distinct
# value; the memo is cleared when full so that a stream of unique ids cannot switch it off.
_KEPT_MEMO_MAX = 200_000
_KEPT_MEMO_LEN = 256
# Distinct values remembered per (policy, column) or leftover path, cleared when full; never
# more than the tokeniser's own cache (``tokenise.cache_size``), so that setting bounds both.
_RULE_MEMO_MAX = 100_000
_MISS: Any = object()
# Longer values are not remembered (they are rarely repeated and would hold memory).
_MEMO_VALUE_MAX = 256
# Leftovers longer than this (as JSON) are not remembered: a Vault entry's leftovers are a few
# KiB and unique per entry, so remembering them cost ~400 MiB per 100k entries for no hits.
_EXTRA_KEY_MAX = 512


@dataclass
class SanitisedBatch:
    table: pa.Table
    rejected: list[Rejected]
    counts: Counter[str] = field(default_factory=Counter)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode("utf-8")


def _raw_bytes(payload: dict[str, Any]) -> bytes:
    """The record as bytes for its dead letter, even when it is too deep for orjson."""
    try:
        return orjson.dumps(payload)
    except (TypeError, ValueError, RecursionError):
        try:
            return repr(payload).encode("utf-8", "surrogatepass")
        except RecursionError:
            return b"<record too deeply nested to serialise>"


class _TimeParser:
    """ISO-8601 → aware UTC datetime, memoised (CloudTrail times repeat at one-second grain)."""

    def __init__(self) -> None:
        self._memo: dict[str, dt.datetime | None] = {}

    def __call__(self, value: Any) -> dt.datetime | None:
        if not isinstance(value, str):
            return None
        hit = self._memo.get(value, False)
        if hit is not False:
            return hit  # type: ignore[return-value]
        parsed = self._parse(value)
        if len(self._memo) > 200_000:
            self._memo.clear()
        self._memo[value] = parsed
        return parsed

    @staticmethod
    def day(parsed: dt.datetime | None) -> str:
        """The ``event_date`` partition of a parsed time."""
        return parsed.date().isoformat() if parsed is not None else NULL_PARTITION

    @staticmethod
    def _parse(value: str) -> dt.datetime | None:
        text = value.strip()
        if len(text) > 40:
            return None
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        # Python's parser takes at most 6 fractional digits; Vault writes 9.
        if "." in text:
            head, _, tail = text.partition(".")
            digits = len(tail) - len(tail.lstrip("0123456789"))
            text = f"{head}.{tail[:min(digits, 6)].ljust(6, '0')}{tail[digits:]}"
        try:
            parsed = dt.datetime.fromisoformat(text)
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=dt.UTC)
            parsed = parsed.astimezone(dt.UTC)  # "0001-01-01T00:00+05:00" overflows here
        except (ValueError, OverflowError):
            return None
        if not 1970 <= parsed.year <= 9999:
            return None
        return parsed


_RAW_COLUMNS = tuple(c for c in COLUMNS if c != "extra")
_RAW_ROW = operator.itemgetter(*_RAW_COLUMNS)


def _transpose(raws: list[dict[str, Any]]) -> dict[str, Sequence[Any]]:
    """Normalised rows → one sequence per column, transposed in C (``zip``) when every row has
    every column, as the normalisers guarantee; key by key otherwise."""
    if not raws:
        return {name: () for name in _RAW_COLUMNS}
    try:
        return dict(zip(_RAW_COLUMNS, zip(*map(_RAW_ROW, raws), strict=True), strict=True))
    except KeyError:
        return {name: [r.get(name) for r in raws] for name in _RAW_COLUMNS}


class _RuleMemo:
    """Distinct input → output cell for one rule, with the counts the rule added for that input.

    Only values whose counts were non-zero are in ``deltas``, so the common hit is one lookup.
    """

    __slots__ = ("cap", "cells", "deltas", "tokenises")

    def __init__(self, rule: Rule, cap: int) -> None:
        self.cap = cap
        self.cells: dict[Any, Any] = {None: None}
        self.deltas: dict[Any, tuple[tuple[str, int], ...]] = {}
        self.tokenises = 1 if rule.action == "tokenise" else 0

    def remember(self, key: Any, cell: Any, delta: Counter[str]) -> None:
        if len(self.cells) > self.cap:
            self.cells.clear()
            self.deltas.clear()
            self.cells[None] = None
        self.cells[key] = cell
        if delta:
            self.deltas[key] = tuple(delta.items())

    def replay(self, key: Any, counts: Counter[str]) -> None:
        """Add the counts remembered for ``key`` (a hit counts like the first occurrence)."""
        delta = self.deltas.get(key)
        if delta:
            for name, n in delta:
                counts[name] += n


class _ColumnPlan:
    """One policy's column rules, resolved once: which rule applies to each schema column."""

    def __init__(self, policy: Policy, cap: int) -> None:
        rules = policy.columns
        self.cap = cap
        self.policy = policy
        strings = [(name, rules.get(name, DROP)) for name in _STRING_COLUMNS]
        self.dropped = tuple(name for name, rule in strings if rule.action == "drop")
        self.strings = tuple((name, rule, _RuleMemo(rule, cap)) for name, rule in strings if rule.action != "drop")
        self.maps = tuple((name, rules.get(name, DROP), _RuleMemo(rules.get(name, DROP), cap),
                           _RuleMemo(rules.get(name, DROP), cap)) for name in sorted(MAP_COLUMNS))
        self.keep_time = "event_time" in rules and rules["event_time"].action == "keep"
        self.keep_read_only = "read_only" in rules
        self.resources = rules.get("resources", DROP)
        self.resources_memo = _RuleMemo(self.resources, cap)
        # leftover path → (rule, key in ``extra``, sub-label) or None when dropped
        self.paths: dict[str, tuple[Rule, str, str] | None] = {}
        self.extra_memo: dict[Rule, _RuleMemo] = {}
        self.extra_rows = _RuleMemo(DROP, cap)  # leftovers (as JSON) → (``extra`` cell, tokenisations)


class Sanitiser:
    """Turns records into pseudonymised rows with one tokeniser (one HSM session)."""

    def __init__(self, policies: dict[str, Policy], tokeniser: Tokeniser) -> None:
        self._policies = policies
        self._tok = tokeniser
        self._time = _TimeParser()
        self._names: dict[str, str] = {}
        self._kept_ok: dict[str, bool] = {}
        self._plans: dict[str, _ColumnPlan] = {}
        self._memo_cap = min(_RULE_MEMO_MAX, tokeniser.cache_size)
        self._hits = 0  # tokenise-rule memo hits: tokenisations answered without the tokeniser

    # -- value rules ----------------------------------------------------------------------------

    def tokenise(self, domain: str, value: str, sub: str = "") -> str:
        return self._tok.tokenise(domain, value, sub)

    def _safe_name(self, name: str) -> str:
        out = self._names.get(name)
        if out is None:
            ok = bool(_SAFE_NAME.match(name)) and not looks_identifying(name)
            out = name if ok else self._tok.tokenise("ctxk", name)
            if len(self._names) < 50_000:
                self._names[name] = out
        return out

    def _keep(self, text: str, counts: Counter[str]) -> str:
        ok = self._kept_ok.get(text)
        if ok is None:
            ok = not looks_identifying(text)
            if len(text) <= _KEPT_MEMO_LEN:
                if len(self._kept_ok) >= _KEPT_MEMO_MAX:
                    self._kept_ok.clear()
                self._kept_ok[text] = ok
        if ok:
            return text
        counts["kept_values_tokenised"] += 1
        return self._tok.tokenise("xtr", text)

    def _value(self, rule: Rule, value: Any, policy: Policy, counts: Counter[str], sub: str = "") -> str | None:
        """Apply ``rule`` to one scalar; None means dropped."""
        if value is None:
            return None
        if rule.action == "drop":  # default deny comes first, even for Vault-HMAC'd values
            counts["dropped_fields"] += 1
            return None
        if isinstance(value, str):
            text = value
        elif isinstance(value, dict | list) and rule.action == "keep":
            counts["dropped_fields"] += 1
            return None
        else:
            text = _text(value)
        if text.startswith(_VAULT_HMAC_PREFIX):
            if policy.vault_hmac == "drop":
                counts["dropped_fields"] += 1
                return None
            if policy.vault_hmac == "tokenise":
                return self._tok.tokenise("vhm", text)
            return text  # "keep": already a keyed hash, by the operator's choice
        action = rule.action
        if action == "keep":
            return self._keep(text, counts)
        if action == "tokenise":
            return self._tok.tokenise(rule.domain, text, sub)
        if action == "generalise":
            # What a generaliser keeps still passes the safety net (a user agent's "product"
            # could be an e-mail address).
            return self._keep(GENERALISERS[rule.generaliser](text, self.tokenise), counts)
        counts["dropped_fields"] += 1
        return None

    @staticmethod
    def _remembered(memo: _RuleMemo, key: Any, counts: Counter[str], compute: Callable[[Counter[str]], Any],
                    keep: bool = True) -> Any:
        """``compute`` for an input not yet in ``memo``: adds the counts it produced and, if
        ``keep`` (the caller's size bound allows it), remembers the cell with them."""
        delta: Counter[str] = Counter()
        cell = compute(delta)
        if delta:
            counts.update(delta)
        if keep:
            memo.remember(key, cell, delta)
        return cell

    def _remembered_value(self, memo: _RuleMemo, key: Any, rule: Rule, value: str, policy: Policy,
                          counts: Counter[str], sub: str = "") -> str | None:
        """``_value`` for a text value not yet in ``memo``, remembered."""
        return self._remembered(memo, key, counts,  # type: ignore[no-any-return]
                                partial(self._value, rule, value, policy, sub=sub), len(value) <= _MEMO_VALUE_MAX)

    def _map_item(self, rule: Rule, k: Any, v: Any, policy: Policy, counts: Counter[str]) -> tuple[str, str] | None:
        name = self._safe_name(str(k))
        if rule.action == "tokenise" and k in rule.keep_values_of:
            cell = self._value(_KEEP, v, policy, counts)
        else:
            cell = self._value(rule, v, policy, counts, sub=name)
        return None if cell is None else (name, cell)

    def _map(self, rule: Rule, memo: _RuleMemo, whole: _RuleMemo, value: Any, policy: Policy,
             counts: Counter[str]) -> list[tuple[str, str]] | None:
        """A map column's cell: remembered whole (an encryption context repeats as a unit), else
        entry by entry through ``memo``."""
        if not isinstance(value, dict):
            counts["dropped_fields"] += 1
            return None
        try:
            key: Any = tuple(value.items())
            hit = whole.cells.get(key, _MISS)
        except TypeError:  # a nested value: not remembered whole
            key, hit = None, _MISS
        if hit is not _MISS:
            self._hits += whole.tokenises * len(hit)
            if whole.deltas:
                whole.replay(key, counts)
            return hit  # type: ignore[no-any-return]
        delta: Counter[str] = Counter()
        out, all_text = self._map_entries(rule, memo, value, policy, delta)
        if delta:
            counts.update(delta)
        if key is not None and all_text:  # text values only: True == 1 must not share a cell
            whole.remember(key, out, delta)
        return out

    def _map_entries(self, rule: Rule, memo: _RuleMemo, value: dict[Any, Any], policy: Policy,
                     counts: Counter[str]) -> tuple[list[tuple[str, str]], bool]:
        out: list[tuple[str, str]] = []
        cells = memo.cells
        all_text = True
        for k, v in value.items():
            if v is None:
                continue
            if type(v) is str and type(k) is str:
                key = (k, v)
                pair = cells.get(key, _MISS)
                if pair is _MISS:
                    small = len(v) <= _MEMO_VALUE_MAX  # too long: not remembered, nor the map whole
                    pair = self._remembered(memo, key, counts, partial(self._map_item, rule, k, v, policy), small)
                    all_text = all_text and small
                else:
                    self._hits += memo.tokenises
                    if memo.deltas:
                        memo.replay(key, counts)
            else:
                all_text = False
                pair = self._map_item(rule, k, v, policy, counts)
            if pair is not None:
                out.append(pair)
        return out, all_text

    def _resource(self, rule: Rule, r: dict[str, Any], policy: Policy, counts: Counter[str]) -> dict[str, Any] | None:
        kind = self._value(_KEEP, r.get("type"), policy, counts)
        ref = self._value(rule, r.get("ref"), policy, counts)
        return None if kind is None and ref is None else {"type": kind, "ref": ref}

    def _resources(self, plan: _ColumnPlan, value: Any, counts: Counter[str]) -> list[dict[str, Any]] | None:
        if not isinstance(value, list):
            return None
        out = []
        memo = plan.resources_memo
        for r in value:
            kind, ref = r.get("type"), r.get("ref")
            if type(kind) is str and type(ref) is str:
                key = (kind, ref)
                cell = memo.cells.get(key, _MISS)
                if cell is _MISS:
                    cell = self._remembered(memo, key, counts, partial(self._resource, plan.resources, r, plan.policy),
                                            len(ref) <= _MEMO_VALUE_MAX)
                elif memo.deltas:
                    memo.replay(key, counts)
            else:
                cell = self._resource(plan.resources, r, plan.policy, counts)
            if cell is not None:
                out.append(cell)
        return out

    # -- records -----------------------------------------------------------------------------

    def _plan(self, policy: Policy) -> _ColumnPlan:
        """The policy's rules per column, looked up once per policy instead of once per value."""
        plan = self._plans.get(policy.source)
        if plan is None or plan.policy is not policy:
            plan = self._plans[policy.source] = _ColumnPlan(policy, self._memo_cap)
        return plan

    def _column(self, rule: Rule, memo: _RuleMemo, values: Sequence[Any], policy: Policy, counts: Counter[str],
                failed: set[int]) -> list[Any]:
        """``rule`` over one column: one memo lookup per cell, ``_value`` once per distinct value."""
        cells_memo = memo.cells
        get = cells_memo.get
        try:
            # Unhashable cells (an object where text was expected) raise: the careful loop below.
            cells = [get(v, _MISS) for v in values]
        except TypeError:
            cells = [_MISS] * len(values)
        misses: list[int] = []
        for i, cell in enumerate(cells):
            if cell is not _MISS:
                continue
            value = values[i]
            misses.append(i)
            try:
                if value is None:
                    cells[i] = None
                elif type(value) is str:
                    cell = cells_memo.get(value, _MISS)
                    if cell is _MISS:
                        cell = self._remembered_value(memo, value, rule, value, policy, counts)
                    elif memo.deltas:
                        memo.replay(value, counts)  # seen earlier in this column
                    cells[i] = cell
                else:
                    cells[i] = self._value(rule, value, policy, counts)
            except _NORMALISE_FAILURES:
                cells[i] = None
                failed.add(i)
        if memo.tokenises:
            self._hits += len(values) - len(misses) - values.count(None)
        if memo.deltas:  # the counts of values answered by the first pass
            done = set(misses)
            deltas = memo.deltas
            for i, v in enumerate(values):
                if type(v) is str and v in deltas and i not in done:
                    memo.replay(v, counts)
        return cells

    def _kept_column(self, rule: Rule, memo: _RuleMemo, values: Sequence[Any], policy: Policy, counts: Counter[str],
                     failed: set[int]) -> list[Any] | pa.Array:
        """A column the policy keeps, checked in one pass: the safety-net prefilter and the Vault
        HMAC prefix run over the whole column in Arrow; only the values they flag go through
        ``_value``. Kept columns are where values are often unique (event and request ids), so
        a memo would only miss."""
        try:
            column = pa.array(values, pa.string())
        except (pa.ArrowException, TypeError, ValueError, OverflowError):  # not all text: value by value
            return self._column(rule, memo, values, policy, counts, failed)
        flagged = pc.or_(maybe_identifying(column),
                         pc.fill_null(pc.starts_with(column, _VAULT_HMAC_PREFIX), False))
        if not pc.any(flagged).as_py():
            return column
        cells = list(values)
        for i in pc.indices_nonzero(flagged).to_pylist():
            try:
                cells[i] = self._value(rule, values[i], policy, counts)
            except _NORMALISE_FAILURES:
                cells[i] = None
                failed.add(i)
        return cells

    def _per_row(self, fn: Any, values: Sequence[Any], failed: set[int]) -> list[Any]:
        """``fn`` over each non-null value of a column; a failing value marks its row as failed."""
        out: list[Any] = []
        for i, value in enumerate(values):
            if value is None:
                out.append(None)
                continue
            try:
                out.append(fn(value))
            except _NORMALISE_FAILURES:
                out.append(None)
                failed.add(i)
        return out

    def _columns(self, records: list[Record], policy: Policy, counts: Counter[str],
                 rejected: list[Rejected]) -> tuple[dict[str, list[Any]], list[str]]:
        """Records of one source → sanitised columns and each row's ``event_date`` partition."""
        normalise = NORMALISERS[policy.source]
        raws: list[dict[str, Any]] = []
        kept: list[Record] = []
        extras: list[str | None] = []
        plan = self._plan(policy)
        failed: set[int] = set()
        for rec in records:
            try:
                raw, consumed = normalise(rec.payload)
                extra = self._extra(rec.payload, consumed, plan, counts)
            except _NORMALISE_FAILURES:
                rejected.append(Rejected("normalise", rec.kind, rec.position, _raw_bytes(rec.payload)))
                counts["dead_letters.normalise"] += 1
                continue
            raws.append(raw)
            kept.append(rec)
            extras.append(extra)
        raw = _transpose(raws)
        cols: dict[str, Any] = {"extra": extras}
        empty = [None] * len(raws)
        for name in plan.dropped:
            n = len(raws) - raw[name].count(None)
            if n:
                counts["dropped_fields"] += n
            cols[name] = empty
        for name, rule, memo in plan.strings:
            column = self._kept_column if rule.action == "keep" else self._column
            cols[name] = column(rule, memo, raw[name], policy, counts, failed)
        for name, rule, memo, whole in plan.maps:
            cols[name] = self._per_row(partial(self._map, rule, memo, whole, policy=policy, counts=counts),
                                       raw[name], failed)
        cols["resources"] = self._per_row(lambda v: self._resources(plan, v, counts), raw["resources"], failed)
        stamps = raw["event_time"]
        times = [self._time(ts) for ts in stamps] if plan.keep_time else empty
        unparsed = sum(1 for ts, t in zip(stamps, times, strict=True) if ts is not None and t is None)
        if unparsed:
            counts["unparsed_times"] += unparsed
        cols["event_time"] = times
        cols["read_only"] = ([ro if isinstance(ro, bool) else None for ro in raw["read_only"]]
                             if plan.keep_read_only else empty)
        dates = [self._time.day(t) for t in times]
        if failed:
            for i in sorted(failed):
                rec = kept[i]
                rejected.append(Rejected("normalise", rec.kind, rec.position, _raw_bytes(rec.payload)))
            counts["dead_letters.normalise"] += len(failed)
            keep = [i for i in range(len(raws)) if i not in failed]
            cols = {name: col.take(pa.array(keep, pa.int64())) if isinstance(col, pa.Array) else [col[i] for i in keep]
                    for name, col in cols.items()}
            dates = [dates[i] for i in keep]
        return cols, dates

    def _path(self, plan: _ColumnPlan, path: str) -> tuple[Rule, str, str] | None:
        """How a leftover path is treated: (rule, key in ``extra``, sub-label), None if dropped."""
        try:
            return plan.paths[path]
        except KeyError:
            pass
        policy = plan.policy
        rule = policy.extra_rule(path)
        found: tuple[Rule, str, str] | None = None
        if rule is not None and rule.action != "drop":
            key = path
            sub = ""
            if path not in policy.extra_exact:
                for prefix, _ in policy.extra_prefixes:
                    if path.startswith(prefix):
                        sub = self._safe_name(path[len(prefix):])
                        key = prefix + sub
                        break
            elif rule.domain in _SUBJECT_MAP_DOMAINS:
                sub = path.rsplit(".", 1)[-1].removesuffix("[]")
            found = (rule, key, sub)
        if len(plan.paths) >= _RULE_MEMO_MAX:
            plan.paths.clear()
        plan.paths[path] = found
        return found

    def _extra(self, payload: dict[str, Any], consumed: Any, plan: _ColumnPlan, counts: Counter[str]) -> str | None:
        """The ``extra`` cell: the leftover fields through the ``[extra]`` allow-list. Events of
        one kind mostly share their leftovers (``eventVersion``, ``eventCategory``, …), so the
        cell is remembered per exact set of leftovers, keyed by their JSON (which tells ``true``
        from ``1``)."""
        items = leftovers(payload, consumed)
        if not items:
            return None
        try:
            key: bytes | None = orjson.dumps(items)
        except (orjson.JSONEncodeError, TypeError):
            key = None
        if key is None or len(key) > _EXTRA_KEY_MAX:  # large leftovers are rarely repeated
            return self._extra_of(items, plan, counts)[0]
        memo = plan.extra_rows
        hit = memo.cells.get(key, _MISS)
        if hit is not _MISS:
            if memo.deltas:
                memo.replay(key, counts)
            self._hits += hit[1]
            return hit[0]  # type: ignore[no-any-return]
        return self._remembered(memo, key, counts, partial(self._extra_of, items, plan))[0]  # type: ignore[no-any-return]

    def _extra_of(self, items: list[tuple[str, Any]], plan: _ColumnPlan,
                  counts: Counter[str]) -> tuple[str | None, int]:
        """(``extra`` JSON, how many tokenisations it took) for one event's leftovers."""
        extra: dict[str, Any] = {}
        policy = plan.policy
        tokenised = 0
        for path, value in items:
            how = self._path(plan, path)
            if how is None:
                counts["dropped_fields"] += 1
                continue
            rule, key, sub = how
            tokenised += rule.action == "tokenise"
            cell: Any
            if type(value) is str:
                memo = plan.extra_memo.get(rule)
                if memo is None:
                    memo = plan.extra_memo[rule] = _RuleMemo(rule, plan.cap)
                mkey = (sub, value)
                cell = memo.cells.get(mkey, _MISS)
                if cell is _MISS:
                    cell = self._remembered_value(memo, mkey, rule, value, policy, counts, sub)
                else:
                    self._hits += memo.tokenises
                    if memo.deltas:
                        memo.replay(mkey, counts)
            elif rule.action == "keep" and isinstance(value, int | float) and not isinstance(value, bool):
                # Numbers stay numbers in `extra`, unless they look like an account id.
                cell = value if not looks_identifying(str(value)) else self._keep(str(value), counts)
            elif rule.action == "keep" and isinstance(value, bool):
                cell = value
            else:
                cell = self._value(rule, value, policy, counts, sub=sub)
            if cell is None:
                continue
            if key.endswith("[]"):
                extra.setdefault(key, []).append(cell)
            else:
                extra[key] = cell
        return (orjson.dumps(extra, option=orjson.OPT_SORT_KEYS).decode("utf-8") if extra else None), tokenised

    def sanitise(self, records: Iterable[Record]) -> SanitisedBatch:
        by_source: dict[str, list[Record]] = {}
        for rec in records:
            by_source.setdefault(rec.kind, []).append(rec)
        if by_source:
            self._tok.probe()  # the HSM answers before a batch is tokenised (fail closed)
        tables: list[pa.Table] = []
        rejected: list[Rejected] = []
        counts: Counter[str] = Counter()
        for kind, recs in by_source.items():
            counts[f"events_in.{kind}"] += len(recs)
            cols, days = self._columns(recs, self._policies[kind], counts, rejected)
            counts[f"events_out.{kind}"] += len(days)
            arrays = [col if isinstance(col := cols[f.name], pa.Array) else pa.array(col, type=f.type)
                      for f in EVENT_SCHEMA]
            arrays += [pa.array([kind] * len(days), pa.string()), pa.array(days, pa.string())]
            tables.append(pa.Table.from_arrays(arrays, schema=_BATCH_SCHEMA))
        self._tok.count_hits(self._hits)
        self._hits = 0
        table = pa.concat_tables(tables) if tables else _BATCH_SCHEMA.empty_table()
        return SanitisedBatch(table, rejected, counts)
