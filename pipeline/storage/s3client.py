"""boto3 clients and pyarrow S3 filesystems built from ``[storage]`` settings, one per process.

Where the settings come from, first match wins:

* endpoint: ``storage.s3_endpoint``, then ``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL``
  (empty: AWS itself);
* region: ``storage.s3_region``, then ``AWS_REGION``, ``AWS_DEFAULT_REGION``;
* credentials: ``storage.s3_access_key`` + ``AUDITVEIL_STORAGE_S3_SECRET_KEY``, then the
  profile ``storage.s3_profile``, then the usual AWS chain (``AWS_ACCESS_KEY_ID`` /
  ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``, ``AWS_PROFILE``, instance roles).

Clients are cached per process and per settings, so Beam workers open one client in
``DoFn.setup()`` (or on first use) and reuse it; a client is never pickled.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pipeline.config import StorageSettings
from pipeline.errors import ConfigError

DEFAULT_TIMEOUT_SECONDS = 30

_lock = threading.Lock()
_clients: dict[tuple[Any, ...], Any] = {}
_filesystems: dict[tuple[Any, ...], Any] = {}


@dataclass(frozen=True)
class S3Uri:
    bucket: str
    key: str  # no leading slash; may be empty (the whole bucket)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}" if self.key else f"s3://{self.bucket}"


def parse_s3_uri(uri: str) -> S3Uri:
    if not uri.startswith("s3://"):
        raise ConfigError("expected an s3:// URI")
    rest = uri[len("s3://"):]
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise ConfigError("an s3:// URI needs a bucket name")
    return S3Uri(bucket, key.lstrip("/"))


def endpoint_url(storage: StorageSettings) -> str:
    """The configured endpoint as a URL with a scheme, or ``""`` for AWS itself."""
    endpoint = (storage.s3_endpoint or os.environ.get("AWS_ENDPOINT_URL_S3", "")
                or os.environ.get("AWS_ENDPOINT_URL", "")).strip()
    if endpoint and "://" not in endpoint:
        endpoint = "https://" + endpoint
    return endpoint.rstrip("/")


def region(storage: StorageSettings) -> str:
    return (storage.s3_region or os.environ.get("AWS_REGION", "")
            or os.environ.get("AWS_DEFAULT_REGION", "")).strip()


def timeout_seconds(storage: StorageSettings) -> int:
    return int(getattr(storage, "s3_timeout_seconds", DEFAULT_TIMEOUT_SECONDS) or DEFAULT_TIMEOUT_SECONDS)


def _key(storage: StorageSettings) -> tuple[Any, ...]:
    secret = storage.s3_secret_key.reveal() if storage.s3_secret_key is not None else ""
    env = tuple(os.environ.get(n, "") for n in (
        "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION",
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"))
    return (storage.s3_endpoint, storage.s3_region, storage.s3_access_key, secret,
            storage.s3_profile, storage.s3_path_style, timeout_seconds(storage), env)


def _static_credentials(storage: StorageSettings) -> tuple[str, str, str] | None:
    """(access key, secret key, session token) when given by settings or a profile."""
    if storage.s3_access_key:
        if storage.s3_secret_key is None:
            raise ConfigError(
                "storage.s3_access_key is set but AUDITVEIL_STORAGE_S3_SECRET_KEY is not"
            )
        return storage.s3_access_key, storage.s3_secret_key.reveal(), ""
    if storage.s3_profile:
        import boto3
        import botocore.exceptions as bce

        try:
            creds = boto3.Session(profile_name=storage.s3_profile).get_credentials()
        except bce.ProfileNotFound:
            raise ConfigError("the AWS profile named in storage.s3_profile does not exist") from None
        if creds is None:
            raise ConfigError("the AWS profile named in storage.s3_profile has no credentials")
        frozen = creds.get_frozen_credentials()
        return frozen.access_key, frozen.secret_key, frozen.token or ""
    return None


def _cached(cache: dict[tuple[Any, ...], Any], storage: StorageSettings, make: Callable[[], Any]) -> Any:
    """``cache[settings]``, made once per process (two racing makers: the first one stored wins)."""
    key = _key(storage)
    with _lock:
        cached = cache.get(key)
    if cached is not None:
        return cached
    made = make()
    with _lock:
        return cache.setdefault(key, made)


def client(storage: StorageSettings) -> Any:
    """A boto3 S3 client for these settings (cached per process; thread-safe to share)."""
    return _cached(_clients, storage, lambda: _make_client(storage))


def _make_client(storage: StorageSettings) -> Any:
    import boto3
    from botocore.config import Config

    timeout = timeout_seconds(storage)
    config = Config(
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=min(timeout, 10), read_timeout=timeout,
        s3={"addressing_style": "path" if storage.s3_path_style else "auto"},
        signature_version="s3v4",
    )
    kwargs: dict[str, Any] = {"config": config}
    if endpoint_url(storage):
        kwargs["endpoint_url"] = endpoint_url(storage)
    if region(storage):
        kwargs["region_name"] = region(storage)
    creds = _static_credentials(storage)
    if creds is not None:
        kwargs["aws_access_key_id"], kwargs["aws_secret_access_key"] = creds[0], creds[1]
        if creds[2]:
            kwargs["aws_session_token"] = creds[2]
    try:
        made = boto3.session.Session().client("s3", **kwargs)
    except ValueError:
        raise ConfigError("storage.s3_endpoint is not a valid URL") from None
    return made


def filesystem(storage: StorageSettings) -> Any:
    """A pyarrow ``S3FileSystem`` for these settings (cached per process)."""
    return _cached(_filesystems, storage, lambda: _make_filesystem(storage))


def _make_filesystem(storage: StorageSettings) -> Any:
    from pyarrow import fs as pafs

    kwargs: dict[str, Any] = {}
    url = endpoint_url(storage)
    if url:
        scheme, host = url.split("://", 1)
        kwargs["endpoint_override"] = host
        kwargs["scheme"] = scheme
    if region(storage):
        kwargs["region"] = region(storage)
    creds = _static_credentials(storage)
    if creds is not None:
        kwargs["access_key"], kwargs["secret_key"] = creds[0], creds[1]
        if creds[2]:
            kwargs["session_token"] = creds[2]
    timeout = timeout_seconds(storage)
    kwargs["connect_timeout"] = float(min(timeout, 10))
    kwargs["request_timeout"] = float(timeout)
    kwargs["force_virtual_addressing"] = not storage.s3_path_style
    kwargs["retry_strategy"] = pafs.AwsStandardS3RetryStrategy(max_attempts=3)
    try:
        made = pafs.S3FileSystem(**kwargs)
    except Exception:
        raise ConfigError("the S3 settings are not valid (endpoint, region or credentials)") from None
    return made
