"""Generalisers: keep the analytically useful, non-identifying part of a value, tokenise the rest.

Each generaliser takes a string and a ``tokenise(domain, value, sub="")`` callable and returns
the generalised string. They are pure and deterministic; the policy names them.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from functools import lru_cache

Tokenise = Callable[..., str]

_ARN = re.compile(r"^arn:(aws[a-z-]*):([a-z0-9-]*):([a-z0-9-]*):(\d{12})?:(.*)$")
_KMS_RESOURCE = re.compile(r"^(key/[0-9a-fA-F-]{36}|key/mrk-[0-9a-fA-F]{32}|alias/[A-Za-z0-9/_-]{1,256})$")
_KEY_ID = re.compile(
    r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|mrk-[0-9a-fA-F]{32})$"
)
_UA_PRODUCT = re.compile(r"^([A-Za-z][A-Za-z0-9._-]{0,63}/[A-Za-z0-9._+-]{1,32})(?:[ ;(]|$)")
_SERVICE_HOST = re.compile(r"^[a-z0-9-]+(\.[a-z0-9-]+)*\.amazonaws\.com(\.cn)?$")
_AWS_LITERALS = frozenset(("AWS Internal", "console.amazonaws.com", "internal"))

_TRANSIT_VERBS = frozenset((
    "encrypt", "decrypt", "rewrap", "datakey", "sign", "verify", "hmac", "keys", "hash", "random",
    "export", "backup", "restore", "cache-config", "wrapping_key", "byok-export",
))
_KV_VERBS = frozenset(("data", "metadata", "delete", "undelete", "destroy", "config", "subkeys"))


def arn_account(value: str, tokenise: Tokenise) -> str:
    """KMS key ARNs keep region and key id, with the account tokenised; other ARNs are tokenised.

    ``arn:aws:kms:eu-central-1:123456789012:key/1234abcd-…`` →
    ``arn:aws:kms:eu-central-1:acct.k1.…:key/1234abcd-…``. A bare key id or alias is kept.
    Anything else (IAM ARNs, S3 object ARNs, names) is tokenised whole in domain ``res``.
    """
    shape = _arn_shape(value)
    if shape is None:
        return tokenise("res", value)
    if not shape:
        return value
    partition, region, account, resource = shape
    acct = tokenise("acct", account) if account else ""
    return f"arn:{partition}:kms:{region}:{acct}:{resource}"


@lru_cache(maxsize=65_536)
def _arn_shape(value: str) -> tuple[str, str, str, str] | tuple[()] | None:
    """(partition, region, account, resource) of a KMS key ARN; () for a bare key id or alias
    (kept); None for anything else (tokenised). Memoised: key ARNs repeat in every event."""
    m = _ARN.match(value)
    if m is None:
        return () if _KEY_ID.match(value) or _KMS_RESOURCE.match(value) else None
    partition, service, region, account, resource = m.groups()
    if service == "kms" and _KMS_RESOURCE.match(resource):
        return partition, region, account or "", resource
    return None


def ip_or_service(value: str, tokenise: Tokenise) -> str:
    """An IP address is tokenised (domain ``ip``); an AWS service caller name is kept."""
    kind, text = _classify_caller(value)
    return value if kind == "service" else tokenise("ip", text)


@lru_cache(maxsize=65_536)
def _classify_caller(value: str) -> tuple[str, str]:
    """("service", value) for an AWS service caller; ("ip", canonical text) otherwise. Memoised:
    parsing an address costs more than the rest of the rule, and callers repeat."""
    if value in _AWS_LITERALS or _SERVICE_HOST.match(value):
        return "service", value
    try:
        return "ip", ipaddress.ip_address(value.strip("[]")).compressed
    except ValueError:
        return "ip", value


def user_agent(value: str, tokenise: Tokenise) -> str:
    """Keep the first product/version token of a user agent (``aws-sdk-java/2.20.0``); drop the
    rest (host names, OS builds, custom suffixes). A service caller name is kept; anything else
    is tokenised in domain ``agent``."""
    if value in _AWS_LITERALS or _SERVICE_HOST.match(value):
        return value
    m = _UA_PRODUCT.match(value)
    if m:
        return m.group(1)
    return tokenise("agent", value)


def vault_path(value: str, tokenise: Tokenise) -> str:
    """Keep a Vault request path's mount and verb; tokenise what identifies a subject.

    ``transit/encrypt/orders`` stays (key names are chosen by operators);
    ``secret/data/customers/eu-user-1`` → ``secret/data/path.k1.…``;
    ``auth/userpass/login/alice`` → ``auth/userpass/login/path.k1.…``.
    """
    parts = value.strip("/").split("/")
    if not parts or not parts[0]:
        return value
    if parts[0] == "sys":
        keep = 2
    elif parts[0] == "auth":
        keep = 3
    elif parts[0] == "kmip" or (len(parts) > 1 and parts[1] == "scope"):
        keep = 5
    elif len(parts) > 1 and parts[1] in _TRANSIT_VERBS:
        keep = len(parts)
    elif len(parts) > 1 and parts[1] in _KV_VERBS:
        keep = 2
    else:
        keep = 1
    head, rest = parts[:keep], parts[keep:]
    if rest:
        head.append(tokenise("path", "/".join(rest)))
    return "/".join(head)


_VAULT_ERRORS = (
    ("permission denied", "permission_denied"),
    ("invalid token", "invalid_token"),
    ("unsupported path", "unsupported_path"),
    ("encryption key not found", "key_not_found"),
    ("not found", "not_found"),
    ("cipher: message authentication failed", "decrypt_failed"),
    ("invalid ciphertext", "invalid_ciphertext"),
    ("rate limit", "rate_limited"),
    ("missing client token", "missing_token"),
    ("internal error", "internal_error"),
)


def vault_error(value: str, tokenise: Tokenise) -> str:
    """Vault error text → a fixed class (Vault errors can quote paths and names)."""
    low = value.lower()
    for needle, label in _VAULT_ERRORS:
        if needle in low:
            return label
    return "error"


GENERALISERS: dict[str, Callable[[str, Tokenise], str]] = {
    "arn_account": arn_account,
    "ip_or_service": ip_or_service,
    "user_agent": user_agent,
    "vault_path": vault_path,
    "vault_error": vault_error,
}
