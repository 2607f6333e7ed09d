"""Apply the field policy to normalised records: the only place raw values become output values.

For each record: normalise (per-source adapter) → for each schema column apply the column rule
(keep / tokenise / generalise / drop; not named = drop) → walk the leftover source fields and
apply the ``[extra]`` allow-list (not named = drop, counted) → one output row. Values a policy
*keeps* still pass a safety net: anything shaped like an identifier (e-mail, IP, ARN with an
account, access key id, account id) is tokenised in domain ``xtr`` instead, and counted.

Rows accumulate column-wise and come out as one Arrow table per batch, with the partition
columns ``source`` and ``event_date`` appended. Tokens minted on the way are left on the
tokeniser's ``pending`` list for the lookup vault.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa

from pipeline.normalise import NORMALISERS, leftovers
from pipeline.sanitise.generalise import GENERALISERS
from pipeline.sanitise.policy import DROP, Policy, Rule
from pipeline.scan.patterns import looks_identifying
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
# Kept values (and what generalisers keep) are checked by the safety net once per distinct
# value; the memo is cleared when full so that a stream of unique ids cannot switch it off.
_KEPT_MEMO_MAX = 200_000
_KEPT_MEMO_LEN = 256


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
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        parsed = parsed.astimezone(dt.UTC)
        if not 1970 <= parsed.year <= 9999:
            return None
        return parsed


class _ColumnPlan:
    """One policy's column rules, resolved once: which rule applies to each schema column."""

    def __init__(self, policy: Policy) -> None:
        rules = policy.columns
        self.policy = policy
        self.strings = tuple((name, rules.get(name, DROP)) for name in _STRING_COLUMNS)
        self.maps = tuple((name, rules.get(name, DROP)) for name in sorted(MAP_COLUMNS))
        self.keep_time = "event_time" in rules and rules["event_time"].action == "keep"
        self.keep_read_only = "read_only" in rules
        self.resources = rules.get("resources", DROP)


class Sanitiser:
    """Turns records into pseudonymised rows with one tokeniser (one HSM session)."""

    def __init__(self, policies: dict[str, Policy], tokeniser: Tokeniser) -> None:
        self._policies = policies
        self._tok = tokeniser
        self._time = _TimeParser()
        self._names: dict[str, str] = {}
        self._kept_ok: dict[str, bool] = {}
        self._plans: dict[str, _ColumnPlan] = {}

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

    def _map(self, rule: Rule, value: Any, policy: Policy, counts: Counter[str]) -> list[tuple[str, str]] | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            counts["dropped_fields"] += 1
            return None
        out: list[tuple[str, str]] = []
        for k, v in value.items():
            if v is None:
                continue
            name = self._safe_name(str(k))
            if rule.action == "tokenise" and k in rule.keep_values_of:
                cell = self._value(_KEEP, v, policy, counts)
            else:
                cell = self._value(rule, v, policy, counts, sub=name)
            if cell is not None:
                out.append((name, cell))
        return out

    def _resources(self, rule: Rule, value: Any, policy: Policy, counts: Counter[str]) -> list[dict[str, Any]] | None:
        if not isinstance(value, list):
            return None
        out = []
        for r in value:
            kind = self._value(_KEEP, r.get("type"), policy, counts)
            ref = self._value(rule, r.get("ref"), policy, counts)
            if kind is not None or ref is not None:
                out.append({"type": kind, "ref": ref})
        return out

    # -- records -----------------------------------------------------------------------------

    def _plan(self, policy: Policy) -> _ColumnPlan:
        """The policy's rules per column, looked up once per policy instead of once per value."""
        plan = self._plans.get(policy.source)
        if plan is None or plan.policy is not policy:
            plan = self._plans[policy.source] = _ColumnPlan(policy)
        return plan

    def _row(self, rec: Record, policy: Policy, cols: dict[str, list[Any]], counts: Counter[str]) -> str:
        """Append one row to ``cols`` (the caller removes a half-appended row on failure)."""
        raw, consumed = NORMALISERS[rec.kind](rec.payload)
        plan = self._plan(policy)
        value_rule = self._value
        for name, rule in plan.strings:
            value = raw.get(name)
            cols[name].append(None if value is None else value_rule(rule, value, policy, counts))
        for name, rule in plan.maps:
            value = raw.get(name)
            cols[name].append(None if value is None else self._map(rule, value, policy, counts))
        ts = raw.get("event_time")
        event_time = self._time(ts) if plan.keep_time else None
        if ts is not None and event_time is None:
            counts["unparsed_times"] += 1
        cols["event_time"].append(event_time)
        ro = raw.get("read_only")
        cols["read_only"].append(ro if isinstance(ro, bool) and plan.keep_read_only else None)
        res = raw.get("resources")
        cols["resources"].append(None if res is None else self._resources(plan.resources, res, policy, counts))
        cols["extra"].append(self._extra(rec.payload, consumed, policy, counts))
        return event_time.date().isoformat() if event_time is not None else NULL_PARTITION

    def _extra(self, payload: dict[str, Any], consumed: Any, policy: Policy, counts: Counter[str]) -> str | None:
        extra: dict[str, Any] = {}
        for path, value in leftovers(payload, consumed):
            rule = policy.extra_rule(path)
            if rule is None or rule.action == "drop":
                counts["dropped_fields"] += 1
                continue
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
            cell: Any
            if rule.action == "keep" and isinstance(value, int | float) and not isinstance(value, bool):
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
        return orjson.dumps(extra, option=orjson.OPT_SORT_KEYS).decode("utf-8") if extra else None

    def sanitise(self, records: Iterable[Record]) -> SanitisedBatch:
        cols: dict[str, list[Any]] = {name: [] for name in COLUMNS}
        sources: list[str] = []
        dates: list[str] = []
        rejected: list[Rejected] = []
        counts: Counter[str] = Counter()
        kinds_in: Counter[str] = Counter()
        for rec in records:
            kinds_in[rec.kind] += 1
            policy = self._policies[rec.kind]
            mark = len(cols["event_id"])
            try:
                date = self._row(rec, policy, cols, counts)
            except _NORMALISE_FAILURES:
                for name in COLUMNS:  # undo a half-appended row
                    del cols[name][mark:]
                rejected.append(Rejected("normalise", rec.kind, rec.position, _raw_bytes(rec.payload)))
                counts["dead_letters.normalise"] += 1
                continue
            sources.append(rec.kind)
            dates.append(date)
        for kind, n in kinds_in.items():
            counts[f"events_in.{kind}"] += n
        for kind, n in Counter(sources).items():
            counts[f"events_out.{kind}"] += n
        arrays = [pa.array(cols[f.name], type=f.type) for f in EVENT_SCHEMA]
        arrays += [pa.array(sources, pa.string()), pa.array(dates, pa.string())]
        schema = EVENT_SCHEMA.append(pa.field("source", pa.string())).append(pa.field("event_date", pa.string()))
        return SanitisedBatch(pa.Table.from_arrays(arrays, schema=schema), rejected, counts)
