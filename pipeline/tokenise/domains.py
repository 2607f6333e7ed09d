"""Identifier domains: which class of identifier a token stands for.

The same string in two roles (an IAM user name that is also an e-mail in Vault metadata) gets
two unrelated tokens unless the policy maps both roles to one domain. The prefix of every
token names its domain, so an analyst can see what kind of thing a token is.
"""

from __future__ import annotations

import re

DOMAINS: dict[str, str] = {
    "prn": "principal ARN (IAM user, role, assumed-role session, federated user)",
    "pid": "principal id (AIDA…/AROA…:session, Vault entity id)",
    "usr": "user or display name",
    "akid": "access key id",
    "acct": "AWS account id",
    "ip": "source IP address",
    "ctx": "encryption-context value (the label adds the context key name)",
    "ctxk": "encryption-context key name that does not look like a schema name",
    "meta": "Vault auth metadata value (the label adds the metadata key)",
    "path": "Vault request path segment below a mount",
    "res": "resource name or ARN that is not a KMS key",
    "vhm": "value already HMAC'd by Vault (hmac-sha256:…)",
    "agent": "user agent remainder",
    "xtr": "allow-listed leftover field tokenised by policy",
}

_DOMAIN_RE = re.compile(r"^[a-z]{2,5}$")


def check_domain(domain: str) -> str:
    if domain not in DOMAINS:
        raise ValueError(f"unknown identifier domain {domain!r}")
    return domain


def label(domain: str, sub: str = "") -> str:
    """The HMAC domain label: the domain, plus a sub-role such as the context key name."""
    return f"{domain}/{sub}" if sub else domain


assert all(_DOMAIN_RE.match(d) for d in DOMAINS)
