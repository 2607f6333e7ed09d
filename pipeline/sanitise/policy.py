"""Declarative field policies (``schemas/policy/<source>.toml``), loaded and compiled.

Format ``auditveil-policy/v1`` (see ``schemas/policy/README.md``)::

    format = "auditveil-policy/v1"
    source = "cloudtrail"
    vault_hmac = "tokenise"           # values already HMAC'd by Vault: tokenise | keep | drop

    [columns]                         # normalised columns; a column not named is null (dropped)
    event_id = "keep"
    actor_arn = { tokenise = "prn" }
    key_ref = { generalise = "arn_account" }
    encryption_context = { tokenise = "ctx", keep_values_of = ["resource_type"] }

    [extra]                           # leftover source fields allow-listed into `extra`
    "requestParameters.encryptionAlgorithm" = "keep"
    "requestParameters.sourceEncryptionContext.*" = { tokenise = "ctx" }

Default deny: a source field that is neither mapped to a column nor named under ``[extra]`` is
dropped and counted. ``a.b.*`` matches everything below ``a.b``; list elements are ``[]``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError
from pipeline.schema import COLUMNS, MAP_COLUMNS
from pipeline.shipped import schemas_dir
from pipeline.tokenise.domains import DOMAINS

POLICY_FORMAT = "auditveil-policy/v1"
ACTIONS = ("keep", "tokenise", "drop", "generalise")
VAULT_HMAC_CHOICES = ("tokenise", "keep", "drop")


@dataclass(frozen=True)
class Rule:
    action: str
    domain: str = ""
    generaliser: str = ""
    keep_values_of: frozenset[str] = frozenset()


DROP = Rule("drop")


@dataclass(frozen=True)
class Policy:
    source: str
    vault_hmac: str
    columns: dict[str, Rule]
    extra_exact: dict[str, Rule]
    extra_prefixes: tuple[tuple[str, Rule], ...]
    _memo: dict[str, Rule | None] = field(default_factory=dict, compare=False, repr=False)

    def extra_rule(self, path: str) -> Rule | None:
        """The rule for a leftover source field path, or None (dropped by default)."""
        try:
            return self._memo[path]
        except KeyError:
            pass
        rule = self.extra_exact.get(path)
        if rule is None:
            for prefix, r in self.extra_prefixes:
                if path.startswith(prefix):
                    rule = r
                    break
        if len(self._memo) < 100_000:
            self._memo[path] = rule
        return rule


def default_policy_dir() -> Path:
    return schemas_dir() / "policy"


def _rule(spec: Any, where: str, generalisers: frozenset[str]) -> Rule:
    if isinstance(spec, str):
        if spec not in ("keep", "drop"):
            raise ConfigError(f"{where}: a bare action must be keep or drop")
        return Rule(spec)
    if not isinstance(spec, dict) or not spec:
        raise ConfigError(f"{where}: expected an action")
    keep_values = spec.get("keep_values_of", [])
    if not isinstance(keep_values, list) or not all(isinstance(k, str) for k in keep_values):
        raise ConfigError(f"{where}: keep_values_of must be a list of names")
    unknown = set(spec) - {"tokenise", "generalise", "keep_values_of"}
    if unknown:
        raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]}")
    if "tokenise" in spec:
        domain = spec["tokenise"]
        if domain not in DOMAINS:
            raise ConfigError(f"{where}: unknown identifier domain")
        return Rule("tokenise", domain=domain, keep_values_of=frozenset(keep_values))
    if "generalise" in spec:
        name = spec["generalise"]
        if name not in generalisers:
            raise ConfigError(f"{where}: unknown generaliser")
        return Rule("generalise", generaliser=name)
    raise ConfigError(f"{where}: expected tokenise or generalise")


def parse_policy(data: dict[str, Any], where: str) -> Policy:
    from pipeline.sanitise.generalise import GENERALISERS

    names = frozenset(GENERALISERS)
    if data.get("format") != POLICY_FORMAT:
        raise ConfigError(f"{where}: not an {POLICY_FORMAT} policy")
    source = data.get("source")
    if not isinstance(source, str):
        raise ConfigError(f"{where}: missing source")
    vault_hmac = data.get("vault_hmac", "tokenise")
    if vault_hmac not in VAULT_HMAC_CHOICES:
        raise ConfigError(f"{where}: vault_hmac must be tokenise, keep or drop")
    cols: dict[str, Rule] = {}
    for name, spec in (data.get("columns") or {}).items():
        if name not in COLUMNS:
            raise ConfigError(f"{where}: [columns] names an unknown column {name}")
        rule = _rule(spec, f"{where} [columns] {name}", names)
        if rule.keep_values_of and name not in MAP_COLUMNS:
            raise ConfigError(f"{where}: keep_values_of only applies to map columns")
        cols[name] = rule
    exact: dict[str, Rule] = {}
    prefixes: list[tuple[str, Rule]] = []
    for path, spec in (data.get("extra") or {}).items():
        rule = _rule(spec, f"{where} [extra] {path}", names)
        if path.endswith(".*"):
            prefixes.append((path[:-1], rule))
        else:
            exact[path] = rule
    prefixes.sort(key=lambda pr: -len(pr[0]))  # most specific first
    unknown = set(data) - {"format", "source", "vault_hmac", "columns", "extra", "description"}
    if unknown:
        raise ConfigError(f"{where}: unknown top-level key {sorted(unknown)[0]}")
    return Policy(source, vault_hmac, cols, exact, tuple(prefixes))


def load_policies(policy_dir: str = "") -> dict[str, Policy]:
    """Every ``*.toml`` policy in ``policy_dir`` (default: the shipped ``schemas/policy``)."""
    directory = Path(policy_dir) if policy_dir else default_policy_dir()
    if not directory.is_dir():
        raise ConfigError("the policy directory does not exist (pipeline.policy_dir)")
    policies: dict[str, Policy] = {}
    for path in sorted(directory.glob("*.toml")):
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"policy {path.name} is not valid TOML ({exc})") from None
        policy = parse_policy(data, f"policy {path.name}")
        policies[policy.source] = policy
    for needed in ("cloudtrail", "vault"):
        if needed not in policies:
            raise ConfigError(f"no policy for source {needed} in the policy directory")
    return policies
