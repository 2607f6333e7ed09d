"""Hypothesis strategies for hostile audit-log input, shared by the property tests.

Values are built from JSON-compatible pieces, with identifier-shaped strings mixed in, so a
property can check both "never crashes" and "no identifier leaks" on the same inputs.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

# Identifier-shaped values (each matches a pattern of pipeline/scan/patterns.py).
IDENTIFIERS = (
    "alice.canary@example-clinic.eu",
    "203.0.113.77",
    "2001:db8:85a3::8a2e:370:7334",
    "arn:aws:iam::210987654321:user/canary",
    "AKIAZZCANARY00000001",
    "210987654321",
)

identifier = st.sampled_from(IDENTIFIERS)
# Text with an identifier embedded in it (prefix + identifier + suffix).
embedded_identifier = st.builds(
    lambda a, ident, b: f"{a} {ident} {b}", st.text(max_size=8), identifier, st.text(max_size=8)
)
hostile_text = st.one_of(
    st.text(max_size=40),
    identifier,
    embedded_identifier,
    st.sampled_from(["hmac-sha256:" + i for i in IDENTIFIERS]),
    st.just("x" * 5000),
    st.just("\u0000\u202e\ufeff"),
    st.just("transit/encrypt/orders"),
    st.just("2026-11-27T10:00:00Z"),
    st.just("0001-01-01T00:00:00+01:00"),
)
scalar = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False), hostile_text,
)


def json_values(max_leaves: int = 20) -> st.SearchStrategy[Any]:
    return st.recursive(
        scalar,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(st.one_of(st.text(max_size=12), identifier), children, max_size=4),
        ),
        max_leaves=max_leaves,
    )


CT_KEYS = (
    "eventVersion", "eventTime", "eventSource", "eventName", "awsRegion", "sourceIPAddress", "userAgent",
    "eventID", "requestID", "readOnly", "errorCode", "errorMessage", "eventType", "recipientAccountId",
    "resources", "userIdentity", "requestParameters", "responseElements", "additionalEventData",
    "tlsDetails", "insightDetails", "sessionCredentialFromConsole", "unknownCanaryField",
)
UI_KEYS = ("type", "principalId", "arn", "accountId", "accessKeyId", "userName", "invokedBy", "sessionContext")
VAULT_KEYS = ("time", "type", "auth", "request", "response", "error", "unknownCanaryField")
AUTH_KEYS = ("display_name", "entity_id", "metadata", "token_type", "policies", "client_token", "accessor")
REQ_KEYS = ("id", "operation", "mount_type", "mount_point", "path", "remote_address", "data", "headers",
            "namespace", "client_token")


def _shaped(keys: tuple[str, ...], overrides: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    return st.dictionaries(
        st.sampled_from(keys), json_values(8), max_size=len(keys)
    ).flatmap(lambda base: st.fixed_dictionaries(
        {}, optional={k: v for k, v in overrides.items()}
    ).map(lambda extra: {**base, **extra}))


def cloudtrail_events() -> st.SearchStrategy[dict[str, Any]]:
    """CloudTrail-shaped events where every field may hold anything, including identifiers."""
    user_identity = _shaped(UI_KEYS, {})
    request_parameters = st.fixed_dictionaries({}, optional={
        "keyId": json_values(4),
        "encryptionContext": st.dictionaries(st.one_of(st.text(max_size=10), identifier), json_values(3),
                                             max_size=4),
        "grantTokens": st.lists(hostile_text, max_size=3),
        "sourceEncryptionContext": json_values(6),
    })
    resources = st.lists(st.fixed_dictionaries({}, optional={"type": scalar, "ARN": json_values(3),
                                                             "accountId": scalar}), max_size=3)
    return _shaped(CT_KEYS, {
        "eventName": hostile_text, "userIdentity": user_identity, "requestParameters": request_parameters,
        "resources": resources,
    }).map(lambda e: {"eventVersion": "1.08", **e})


def vault_entries() -> st.SearchStrategy[dict[str, Any]]:
    auth = _shaped(AUTH_KEYS, {"metadata": st.dictionaries(st.one_of(st.text(max_size=10), identifier),
                                                           json_values(3), max_size=4)})
    request = _shaped(REQ_KEYS, {
        "path": st.one_of(hostile_text, st.builds(lambda m, v, r: f"{m}/{v}/{r}", st.text(max_size=8),
                                                  st.sampled_from(["encrypt", "data", "keys", "login", "x"]),
                                                  hostile_text)),
        "headers": st.dictionaries(st.text(max_size=10), st.one_of(hostile_text, st.lists(hostile_text)),
                                   max_size=3),
        "data": json_values(8),
    })
    return _shaped(VAULT_KEYS, {"auth": auth, "request": request}).map(
        lambda e: {"type": "request", **e} if not isinstance(e.get("type"), str) else e
    ).map(lambda e: {**e, "request": e.get("request", {"id": "r"})})
