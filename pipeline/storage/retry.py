"""Retry transient storage failures with exponential backoff, and name failures without identifiers.

Object stores fail in two ways that call for different answers:

* *transient*: HTTP 5xx (``InternalError``, ``SlowDown``, ``ServiceUnavailable``), throttling,
  timeouts, refused or reset connections. These are retried with exponential backoff and full
  jitter until a time budget (``storage.s3_retry_seconds``) is spent;
* *permanent*: bad credentials, a missing bucket or object, access denied. These fail at once
  with one identifier-free sentence that says what to check.

The client libraries' own retries (botocore's ``standard`` mode, the AWS C++ SDK's under
pyarrow) stay on with a few fast attempts; this loop is the outer, patient one that rides out
an endpoint being down for tens of seconds. Every operation wrapped here is idempotent (whole
object PUT, GET, LIST, HEAD, DELETE), so retrying cannot duplicate anything.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from pipeline.config import StorageSettings
from pipeline.errors import AuditveilError, ConfigError, InputError, SinkError

T = TypeVar("T")
log = logging.getLogger(__name__)

DEFAULT_RETRY_SECONDS = 60
BASE_DELAY = 0.2
MAX_DELAY = 8.0

# Error codes that S3-compatible servers return for a temporary condition.
_TRANSIENT_CODES = frozenset({
    "InternalError", "InternalFailure", "ServiceUnavailable", "SlowDown", "Throttling",
    "ThrottlingException", "RequestTimeout", "RequestTimeTooSkewed", "RequestLimitExceeded",
    "TooManyRequests", "XMinioServerNotInitialized", "XMinioStorageFull",
    "503", "500", "502", "504",
})
_CREDENTIAL_CODES = frozenset({
    "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken",
    "InvalidClientTokenId", "AuthorizationHeaderMalformed", "InvalidSecurityToken",
})
_DENIED_CODES = frozenset({"AccessDenied", "AllAccessDisabled", "403", "Forbidden"})
_NO_BUCKET_CODES = frozenset({"NoSuchBucket"})
_NO_KEY_CODES = frozenset({"NoSuchKey", "404", "NotFound"})

# Substrings of pyarrow / AWS C++ SDK error texts (lower case), most specific first.
_PYARROW_MARKERS: tuple[tuple[str, str], ...] = (
    ("no_such_bucket", "no_bucket"), ("nosuchbucket", "no_bucket"), ("no such bucket", "no_bucket"),
    ("invalid_access_key_id", "credentials"), ("invalidaccesskeyid", "credentials"),
    ("signature_does_not_match", "credentials"), ("signaturedoesnotmatch", "credentials"),
    ("expired_token", "credentials"), ("invalid_token", "credentials"),
    ("access_denied", "denied"), ("accessdenied", "denied"), ("access denied", "denied"),
    ("no_such_key", "missing"), ("nosuchkey", "missing"), ("resource_not_found", "missing"),
    ("path does not exist", "missing"),
    ("slow_down", "transient"), ("slowdown", "transient"), ("service_unavailable", "transient"),
    ("serviceunavailable", "transient"), ("internal_failure", "transient"),
    ("internalerror", "transient"), ("throttl", "transient"), ("request_timeout", "transient"),
    ("network_connection", "transient"), ("couldn't connect", "transient"),
    ("connection refused", "transient"), ("connection reset", "transient"),
    ("connection was reset", "transient"),
    ("timed out", "transient"), ("timeout", "transient"), ("http status 5", "transient"),
    ("curlcode: 7", "transient"), ("curlcode: 28", "transient"), ("curlcode: 52", "transient"),
    ("curlcode: 56", "transient"), ("empty reply", "transient"), ("recv failure", "transient"),
    ("failure when receiving", "transient"), ("unexpected end", "transient"),
)

# What to tell the user, per failure kind. One sentence, no identifiers.
MESSAGES = {
    "credentials": "the storage endpoint rejected the credentials; check AWS_ACCESS_KEY_ID and "
                   "AWS_SECRET_ACCESS_KEY (or storage.s3_access_key / s3_profile)",
    "denied": "the storage endpoint denied access; the credentials lack permission for this "
              "bucket or prefix",
    "no_bucket": "the bucket does not exist on the storage endpoint (or these credentials cannot "
                 "see it); create it or fix the URI",
    "missing": "the object does not exist",
    "transient": "the storage endpoint kept failing (server errors or timeouts) until the retry "
                 "budget storage.s3_retry_seconds was spent; try again later",
    "no_credentials": "no storage credentials were found; set AWS_ACCESS_KEY_ID and "
                      "AWS_SECRET_ACCESS_KEY, a profile, or storage.s3_access_key",
    "endpoint": "the storage endpoint setting is not a valid URL",
    "other": "the storage operation failed",
}


def classify(exc: BaseException) -> str:
    """One of ``transient``, ``credentials``, ``denied``, ``no_bucket``, ``missing``,
    ``no_credentials``, ``endpoint`` or ``other``, for boto and pyarrow errors alike."""
    try:
        import botocore.exceptions as bce
    except ImportError:  # pragma: no cover - boto3 is a dependency
        bce = None  # type: ignore[assignment]
    if bce is not None:
        if isinstance(exc, bce.NoCredentialsError | bce.PartialCredentialsError):
            return "no_credentials"
        if isinstance(exc, bce.ProfileNotFound):
            return "no_credentials"
        if isinstance(exc, bce.InvalidEndpointConfigurationError | bce.ParamValidationError):
            return "endpoint"
        if isinstance(exc, bce.ClientError):
            err = exc.response.get("Error", {}) or {}
            code = str(err.get("Code", ""))
            status = int((exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0)
            if code in _CREDENTIAL_CODES:
                return "credentials"
            if code in _NO_BUCKET_CODES:
                return "no_bucket"
            if code in _DENIED_CODES:
                return "denied"
            if code in _NO_KEY_CODES or status == 404:
                return "missing"
            if code in _TRANSIENT_CODES or status >= 500 or status == 429:
                return "transient"
            return "other"
        if isinstance(exc, bce.EndpointConnectionError | bce.ConnectionClosedError
                      | bce.ReadTimeoutError | bce.ConnectTimeoutError | bce.ResponseStreamingError):
            return "transient"
        if isinstance(exc, bce.HTTPClientError):
            return "transient"
    if isinstance(exc, FileNotFoundError):
        return "missing"
    if isinstance(exc, TimeoutError | ConnectionError):
        return "transient"
    if isinstance(exc, OSError):
        text = str(exc).lower()
        for needle, kind in _PYARROW_MARKERS:
            if needle in text:
                return kind
    return "other"


def retry_budget(storage: StorageSettings | None) -> float:
    value = getattr(storage, "s3_retry_seconds", DEFAULT_RETRY_SECONDS) if storage else DEFAULT_RETRY_SECONDS
    return max(0.0, float(value))


def call(
    fn: Callable[[], T],
    *,
    storage: StorageSettings | None,
    what: str,
    error: type[AuditveilError] = SinkError,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``fn`` and retry transient failures with backoff; translate every failure.

    ``what`` names the operation for the message (``"write an output file"``); it must not
    contain an identifier. Permanent failures raise ``error`` (or :class:`ConfigError` for
    missing credentials) at once, transient ones once the budget is spent.
    """
    budget = retry_budget(storage)
    deadline = time.monotonic() + budget
    attempt = 0
    while True:
        try:
            return fn()
        except AuditveilError:
            raise
        except Exception as exc:
            kind = classify(exc)
            if kind == "transient" and time.monotonic() < deadline:
                delay = min(MAX_DELAY, BASE_DELAY * (2 ** attempt)) * (0.5 + random.random() / 2)
                delay = min(delay, max(0.05, deadline - time.monotonic()))
                attempt += 1
                log.warning("storage: transient failure (attempt %d) while trying to %s; retrying in %.1fs",
                            attempt, what, delay)
                sleep(delay)
                continue
            raise translate(exc, what, error) from None


def translate(exc: BaseException, what: str, error: type[AuditveilError] = SinkError) -> AuditveilError:
    """An auditveil error with one identifier-free sentence for a storage library error."""
    kind = classify(exc)
    if kind in ("no_credentials", "endpoint"):
        return ConfigError(f"cannot {what}: {MESSAGES[kind]}")
    return error(f"cannot {what}: {MESSAGES[kind]}")


def call_input(fn: Callable[[], T], *, storage: StorageSettings | None, what: str) -> T:
    """:func:`call` for reading inputs: failures are :class:`InputError`."""
    return call(fn, storage=storage, what=what, error=InputError)

