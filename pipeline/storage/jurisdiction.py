"""The destination guard: refuse non-EU regions, flag US-headquartered providers.

Called by ``auditveil run`` (and anything else that writes pseudonymised data or lookup
entries) before the first write. It is offline and cheap: the endpoint host and region come
from the settings, the rules from ``schemas/jurisdiction.toml`` (see the comments there for
the full decision procedure and the reasoning behind each list). Local paths always pass.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pipeline.config import StorageSettings
from pipeline.errors import ConfigError, JurisdictionError
from pipeline.shipped import schemas_dir
from pipeline.storage import s3client

AWS_DEFAULT_HOST = "s3.amazonaws.com"


@dataclass(frozen=True)
class Provider:
    id: str
    name: str
    us_headquartered: bool
    endpoint_suffixes: tuple[str, ...]
    region_patterns: tuple[re.Pattern[str], ...]
    eu_regions: frozenset[str]

    def claims(self, host: str) -> bool:
        return any(host == s or host.endswith("." + s) for s in self.endpoint_suffixes)

    def region_of(self, host: str) -> str:
        for pattern in self.region_patterns:
            m = pattern.search(host)
            if m:
                return m["region"]
        return ""


@dataclass(frozen=True)
class Rules:
    providers: tuple[Provider, ...]
    self_hosted_regions: frozenset[str]
    local_hosts: frozenset[str]

    @property
    def all_eu_regions(self) -> frozenset[str]:
        return self.self_hosted_regions.union(*(p.eu_regions for p in self.providers))

    def provider_for(self, host: str) -> Provider | None:
        for p in self.providers:
            if p.claims(host):
                return p
        return None


@dataclass(frozen=True)
class Verdict:
    """What the guard found; ``warnings`` are already worded for the operator."""

    provider: str  # provider id, "self-hosted" or "local"
    region: str
    warnings: tuple[str, ...]


@functools.lru_cache(maxsize=8)
def load_rules(path: str = "") -> Rules:
    """Parse the jurisdiction data file (cached)."""
    file = Path(path) if path else schemas_dir() / "jurisdiction.toml"
    try:
        doc = tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError:
        raise ConfigError("the jurisdiction data file cannot be read") from None
    except tomllib.TOMLDecodeError:
        raise ConfigError("the jurisdiction data file is not valid TOML") from None
    try:
        providers = tuple(
            Provider(
                id=str(p["id"]), name=str(p["name"]), us_headquartered=bool(p["us_headquartered"]),
                endpoint_suffixes=tuple(str(s).lower() for s in p["endpoint_suffixes"]),
                region_patterns=tuple(re.compile(r) for r in p.get("region_from_host", [])),
                eu_regions=frozenset(str(r).lower() for r in p["eu_regions"]),
            )
            for p in doc["providers"]
        )
        own = doc.get("self_hosted", {})
        return Rules(
            providers,
            frozenset(str(r).lower() for r in own.get("eu_regions", [])),
            frozenset(str(h).lower() for h in own.get("local_hosts", [])),
        )
    except (KeyError, TypeError, re.error):
        raise ConfigError("the jurisdiction data file is missing a field or has a bad pattern") from None


def _is_local(host: str, rules: Rules) -> bool:
    if host in rules.local_hosts or host.endswith(".local") or host.endswith(".internal"):
        return True
    try:
        addr = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return addr.is_loopback or addr.is_private or addr.is_link_local


def assess(uri: str, storage: StorageSettings) -> tuple[Verdict, str | None, str | None]:
    """(verdict, region refusal reason or None, provider refusal reason or None)."""
    if not uri.startswith("s3://"):
        return Verdict("local", "", ()), None, None
    rules = load_rules(getattr(storage, "jurisdiction_file", "") or "")
    endpoint = s3client.endpoint_url(storage)
    host = (urlsplit(endpoint).hostname or "").lower() if endpoint else AWS_DEFAULT_HOST
    provider = rules.provider_for(host)
    region = (provider.region_of(host) if provider else "") or s3client.region(storage)
    region = region.lower()
    warnings: list[str] = []
    region_problem: str | None = None
    provider_problem: str | None = None

    if provider is None:
        kind = "a self-hosted endpoint" if _is_local(host, rules) else "an endpoint of an unknown provider"
        if not region:
            warnings.append(
                f"the destination is {kind} with no region configured, so auditveil cannot check "
                "that it is in the EU/EEA; make sure it is (set storage.s3_region to record where)"
            )
        elif region not in rules.all_eu_regions:
            region_problem = (
                f"the destination region '{region}' is not on the EU/EEA allow-list in "
                "schemas/jurisdiction.toml"
            )
    else:
        if not region:
            region_problem = (
                f"the destination is on {provider.name} but no region is configured "
                "(set storage.s3_region or AWS_REGION), so it cannot be shown to be in the EU/EEA"
            )
        elif region not in provider.eu_regions:
            region_problem = (
                f"the destination region '{region}' of {provider.name} is outside the EU/EEA "
                "allow-list in schemas/jurisdiction.toml"
            )
        if provider.us_headquartered:
            provider_problem = (
                f"the destination endpoint is operated by {provider.name}, a US-headquartered "
                "provider that the US CLOUD Act can compel to hand over the data even from an "
                "EU region"
            )
    verdict = Verdict(provider.id if provider else "self-hosted", region, tuple(warnings))
    return verdict, region_problem, provider_problem


def check_destination(
    uri: str, storage: StorageSettings, allow_non_eu: bool = False, strict_sovereignty: bool = False,
) -> list[str]:
    """Check where ``uri`` would be written; return warnings or raise :class:`JurisdictionError`.

    * a region outside the EU/EEA allow-list (or an unknown region at a known provider) is
      refused unless ``allow_non_eu`` (then it is a warning);
    * a US-headquartered provider is a warning, refused when ``strict_sovereignty``;
    * local paths pass without warnings.

    The settings' own ``allow_non_eu`` / ``strict_sovereignty`` apply as well (either source
    can loosen or tighten: ``allow_non_eu`` if either allows, ``strict`` if either demands).
    """
    allow = allow_non_eu or storage.allow_non_eu
    strict = strict_sovereignty or storage.strict_sovereignty
    verdict, region_problem, provider_problem = assess(uri, storage)
    warnings = list(verdict.warnings)
    if region_problem:
        if not allow:
            raise JurisdictionError(f"refusing to write: {region_problem}; pass --allow-non-eu to "
                                    "write there anyway")
        warnings.append(f"writing outside the EU/EEA as allowed by --allow-non-eu: {region_problem}")
    if provider_problem:
        if strict:
            raise JurisdictionError(f"refusing to write under --strict-sovereignty: {provider_problem}")
        warnings.append(f"{provider_problem}; use an EU-headquartered provider, or "
                        "--strict-sovereignty to refuse such endpoints")
    return warnings
