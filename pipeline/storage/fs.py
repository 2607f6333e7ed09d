"""Local paths and ``s3://`` URIs behind one pyarrow filesystem interface.

Writes are atomic from a reader's point of view: on a local disk a file is written under a
hidden temporary name in the same directory and renamed into place; on S3 an object only
becomes visible when its upload completes, so it is written directly. Readers of the Parquet
dataset (pyarrow, DuckDB, Polars) ignore names that start with ``.`` or ``_``.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from typing import Any

from pipeline.config import StorageSettings
from pipeline.errors import ConfigError, SinkError


@dataclass(frozen=True)
class Location:
    """A resolved output location: a filesystem and a base path inside it."""

    uri: str
    fs: Any
    base: str
    is_s3: bool

    def join(self, *parts: str) -> str:
        return "/".join([self.base.rstrip("/"), *parts]) if self.base else "/".join(parts)


def s3_filesystem(storage: StorageSettings, region_hint: str = "") -> Any:
    from pyarrow import fs as pafs

    kwargs: dict[str, Any] = {}
    endpoint = storage.s3_endpoint or os.environ.get("AWS_ENDPOINT_URL", "")
    if endpoint:
        scheme = "https"
        if "://" in endpoint:
            scheme, endpoint = endpoint.split("://", 1)
        kwargs["endpoint_override"] = endpoint.rstrip("/")
        kwargs["scheme"] = scheme
    region = storage.s3_region or region_hint or os.environ.get("AWS_REGION") or os.environ.get(
        "AWS_DEFAULT_REGION", ""
    )
    if region:
        kwargs["region"] = region
    if storage.s3_access_key and storage.s3_secret_key is not None:
        kwargs["access_key"] = storage.s3_access_key
        kwargs["secret_key"] = storage.s3_secret_key.reveal()
    kwargs["force_virtual_addressing"] = not storage.s3_path_style
    kwargs["retry_strategy"] = pafs.AwsStandardS3RetryStrategy(max_attempts=6)
    try:
        return pafs.S3FileSystem(**kwargs)
    except Exception:
        raise ConfigError("the S3 settings are not valid (endpoint, region or credentials)") from None


def resolve(uri: str, storage: StorageSettings | None = None) -> Location:
    """Turn a path or URI given by the user into a :class:`Location`."""
    from pyarrow import fs as pafs

    storage = storage or StorageSettings()
    if uri.startswith("s3://"):
        rest = uri[len("s3://"):].strip("/")
        if not rest:
            raise ConfigError("an s3:// URI needs a bucket name")
        return Location(uri, s3_filesystem(storage), rest, True)
    if "://" in uri:
        raise ConfigError("only local paths and s3:// URIs are supported as locations")
    path = os.path.abspath(uri)
    return Location(uri, pafs.LocalFileSystem(), path, False)


def ensure_dir(loc: Location, path: str) -> None:
    if loc.is_s3:
        return
    try:
        loc.fs.create_dir(path, recursive=True)
    except OSError as exc:
        raise SinkError(f"cannot create an output directory ({_reason(exc)})") from None


def write_bytes_atomic(loc: Location, path: str, data: bytes) -> None:
    parent = path.rsplit("/", 1)[0]
    ensure_dir(loc, parent)
    target = path if loc.is_s3 else f"{parent}/.tmp-{uuid.uuid4().hex}"
    try:
        with loc.fs.open_output_stream(target) as out:
            out.write(data)
        if not loc.is_s3:
            loc.fs.move(target, path)
    except OSError as exc:
        if not loc.is_s3:
            _discard(loc, target)
        raise SinkError(f"cannot write an output file ({_reason(exc)})") from None


def write_parquet_atomic(loc: Location, path: str, table: Any, **options: Any) -> int:
    """Write ``table`` as Parquet at ``path``; returns the bytes written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", **options)
    buf = sink.getvalue()
    write_bytes_atomic(loc, path, buf.to_pybytes())
    return int(buf.size)


def read_bytes(loc: Location, path: str) -> bytes:
    try:
        with loc.fs.open_input_stream(path) as fh:
            return bytes(fh.read())
    except OSError as exc:
        raise SinkError(f"cannot read a stored file ({_reason(exc)})") from None


def delete(loc: Location, path: str) -> None:
    try:
        loc.fs.delete_file(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise SinkError(f"cannot delete a stored file ({_reason(exc)})") from None


def list_files(loc: Location, path: str, suffix: str = "") -> list[str]:
    """Every file below ``path`` (recursively) whose name ends with ``suffix``, sorted."""
    from pyarrow import fs as pafs

    try:
        infos = loc.fs.get_file_info(pafs.FileSelector(path, recursive=True, allow_not_found=True))
    except OSError as exc:
        raise SinkError(f"cannot list a stored location ({_reason(exc)})") from None
    return sorted(
        i.path for i in infos
        if i.type == pafs.FileType.File and i.path.endswith(suffix)
        and not i.path.rsplit("/", 1)[-1].startswith(".tmp-")
    )


def _discard(loc: Location, path: str) -> None:
    try:
        loc.fs.delete_file(path)
    except OSError:
        pass


def _reason(exc: OSError) -> str:
    """A short, identifier-free reason: the errno name or a storage error class."""
    import errno

    if exc.errno:
        return errno.errorcode.get(exc.errno, "I/O error")
    text = str(exc).lower()
    for needle, reason in (
        ("access denied", "access denied"), ("nosuchbucket", "bucket does not exist"),
        ("no such bucket", "bucket does not exist"), ("invalidaccesskeyid", "bad credentials"),
        ("signaturedoesnotmatch", "bad credentials"), ("no space", "disk full"),
        ("connection", "storage endpoint unreachable"), ("timed out", "storage timed out"),
        ("permission denied", "permission denied"),
    ):
        if needle in text:
            return reason
    return "storage error"
