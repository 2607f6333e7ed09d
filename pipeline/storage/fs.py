"""Local paths and ``s3://`` URIs behind one interface, with atomic visibility and retries.

Atomic from a reader's point of view:

* on a local disk a file is written under a hidden temporary name (``.tmp-…``) in the same
  directory, flushed, and renamed into place (``rename(2)`` is atomic);
* on S3 an object becomes visible only when its upload completes. Objects are uploaded with
  boto3 as one ``PutObject`` (or, above 64 MiB, a multipart upload that is *aborted* on any
  failure), never through a stream whose ``close()`` could publish a truncated object.

Readers of the Parquet dataset (pyarrow, DuckDB, Polars, Spark) ignore names that start with
``.`` or ``_``, so temporary files and the ``_manifest/`` directory never show up as data.

Transient failures (5xx, throttling, timeouts, refused connections) are retried with
exponential backoff for up to ``storage.s3_retry_seconds``; bad credentials, a missing bucket
or a denied request fail at once with one identifier-free sentence (:mod:`.retry`).
"""

from __future__ import annotations

import io
import os
import uuid
from dataclasses import dataclass
from typing import Any

from pipeline.config import StorageSettings
from pipeline.errors import ConfigError, SinkError
from pipeline.storage import retry, s3client

MULTIPART_THRESHOLD = 64 * 1024 * 1024


@dataclass(frozen=True)
class Location:
    """A resolved location: a filesystem and a base path inside it (``bucket/prefix`` on S3)."""

    uri: str
    fs: Any
    base: str
    is_s3: bool
    storage: StorageSettings | None = None

    def join(self, *parts: str) -> str:
        return "/".join([self.base.rstrip("/"), *parts]) if self.base else "/".join(parts)

    def uri_of(self, path: str) -> str:
        """The user-facing URI of a path inside this location's filesystem."""
        return f"s3://{path}" if self.is_s3 else path


def s3_filesystem(storage: StorageSettings, region_hint: str = "") -> Any:
    """A pyarrow S3 filesystem for these settings (kept for callers of the first version)."""
    return s3client.filesystem(storage)


def resolve(uri: str, storage: StorageSettings | None = None) -> Location:
    """Turn a path or URI given by the user into a :class:`Location`."""
    from pyarrow import fs as pafs

    storage = storage or StorageSettings()
    if uri.startswith("s3://"):
        parsed = s3client.parse_s3_uri(uri.rstrip("/"))
        base = f"{parsed.bucket}/{parsed.key}".rstrip("/")
        return Location(uri, s3client.filesystem(storage), base, True, storage)
    if "://" in uri:
        raise ConfigError("only local paths and s3:// URIs are supported as locations")
    path = os.path.abspath(uri)
    return Location(uri, pafs.LocalFileSystem(), path, False, storage)


def _split(path: str) -> tuple[str, str]:
    bucket, _, key = path.partition("/")
    return bucket, key


def ensure_dir(loc: Location, path: str) -> None:
    if loc.is_s3:
        return
    try:
        loc.fs.create_dir(path, recursive=True)
    except OSError as exc:
        raise SinkError(f"cannot create an output directory ({_reason(exc)})") from None


def _put_s3(loc: Location, path: str, data: bytes) -> None:
    bucket, key = _split(path)
    client = s3client.client(loc.storage or StorageSettings())
    if len(data) < MULTIPART_THRESHOLD:
        client.put_object(Bucket=bucket, Key=key, Body=data)
        return
    from boto3.s3.transfer import TransferConfig

    # s3transfer aborts the multipart upload when any part fails: nothing partial is published.
    client.upload_fileobj(io.BytesIO(data), bucket, key, Config=TransferConfig(
        multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=16 * 1024 * 1024,
        max_concurrency=4, use_threads=True))


def write_bytes_atomic(loc: Location, path: str, data: bytes) -> None:
    """Write ``data`` at ``path``: readers see the old content or all of the new, nothing between."""
    if loc.is_s3:
        retry.call(lambda: _put_s3(loc, path, data), storage=loc.storage, what="write an output file")
        return
    parent = path.rsplit("/", 1)[0]
    ensure_dir(loc, parent)
    target = f"{parent}/.tmp-{uuid.uuid4().hex}"
    try:
        with open(target, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(target, path)
    except OSError as exc:
        _discard(loc, target)
        raise SinkError(f"cannot write an output file ({_reason(exc)})") from None


def write_parquet_atomic(loc: Location, path: str, table: Any, **options: Any) -> int:
    """Write ``table`` as zstd Parquet at ``path`` atomically; returns the bytes written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    options.setdefault("compression", "zstd")
    pq.write_table(table, sink, **options)
    buf = sink.getvalue()
    write_bytes_atomic(loc, path, buf.to_pybytes())
    return int(buf.size)


def read_bytes(loc: Location, path: str) -> bytes:
    def read() -> bytes:
        with loc.fs.open_input_stream(path) as fh:
            return bytes(fh.read())

    if loc.is_s3:
        return retry.call(read, storage=loc.storage, what="read a stored file")
    try:
        return read()
    except OSError as exc:
        raise SinkError(f"cannot read a stored file ({_reason(exc)})") from None


def exists(loc: Location, path: str) -> bool:
    from pyarrow import fs as pafs

    def info() -> bool:
        return bool(loc.fs.get_file_info(path).type == pafs.FileType.File)

    return retry.call(info, storage=loc.storage, what="look up a stored file")


def delete(loc: Location, path: str) -> None:
    def rm() -> None:
        try:
            loc.fs.delete_file(path)
        except FileNotFoundError:
            pass

    if loc.is_s3:
        retry.call(rm, storage=loc.storage, what="delete a stored file")
        return
    try:
        rm()
    except OSError as exc:
        raise SinkError(f"cannot delete a stored file ({_reason(exc)})") from None


def list_files(loc: Location, path: str, suffix: str = "") -> list[str]:
    """Every file below ``path`` (recursively) whose name ends with ``suffix``, sorted.

    Temporary files (``.tmp-…``) are never listed.
    """
    from pyarrow import fs as pafs

    def ls() -> list[Any]:
        return list(loc.fs.get_file_info(pafs.FileSelector(path, recursive=True, allow_not_found=True)))

    if loc.is_s3:
        infos = retry.call(ls, storage=loc.storage, what="list a stored location")
    else:
        try:
            infos = ls()
        except OSError as exc:
            raise SinkError(f"cannot list a stored location ({_reason(exc)})") from None
    return sorted(
        i.path for i in infos
        if i.type == pafs.FileType.File and i.path.endswith(suffix)
        and not i.path.rsplit("/", 1)[-1].startswith(".tmp-")
    )


def check_writable(loc: Location) -> None:
    """Fail early, with a clear sentence, when the bucket is missing or the credentials are bad.

    On S3 this is one cheap ``ListObjectsV2`` (one key); on a local disk, the directory is created.
    """
    if not loc.is_s3:
        ensure_dir(loc, loc.base)
        return
    check_reachable(loc, "reach the output bucket")


def check_reachable(loc: Location, what: str = "reach the bucket") -> None:
    """On S3, fail with a clear sentence when the bucket is missing or the credentials are bad
    (listing a missing bucket through pyarrow would just look empty). Local: nothing to do."""
    if not loc.is_s3:
        return
    bucket, key = _split(loc.base)
    client = s3client.client(loc.storage or StorageSettings())

    def probe() -> None:
        # A LIST answers with an error document (NoSuchBucket, InvalidAccessKeyId, …); a HEAD
        # would only give a bare status code.
        try:
            client.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
        except Exception as exc:
            if retry.classify(exc) == "denied":
                return  # a write-only credential may not list; the first write will tell
            raise

    retry.call(probe, storage=loc.storage, what=what)


def _discard(loc: Location, path: str) -> None:
    try:
        os.unlink(path) if not loc.is_s3 else loc.fs.delete_file(path)
    except OSError:
        pass


def _reason(exc: OSError) -> str:
    """A short, identifier-free reason: the errno name or a storage error class."""
    import errno

    if exc.errno:
        return errno.errorcode.get(exc.errno, "I/O error")
    kind = retry.classify(exc)
    return {
        "credentials": "bad credentials", "denied": "access denied", "no_bucket": "bucket does not exist",
        "missing": "no such file", "transient": "storage unavailable",
    }.get(kind, "storage error")
