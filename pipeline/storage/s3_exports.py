"""CloudTrail exports in S3: find the log objects to read, and read them.

CloudTrail delivers to ``s3://bucket/[prefix/]AWSLogs/[o-org/]<account>/CloudTrail/<region>/
YYYY/MM/DD/<account>_CloudTrail_<region>_<time>_<random>.json.gz``; Insight events go to
``CloudTrail-Insight/`` and the signed hourly digests to ``CloudTrail-Digest/``. Digests are
counted and skipped (they hold hashes of log files, not events).

:func:`expand_s3_inputs` narrows the listing by walking the layout level by level (accounts,
regions, then one prefix per day of ``since``..``until``), so a date-bounded run over a bucket
with years of history lists only the days it needs; everything else is a paginated
``ListObjectsV2``. Object keys contain account ids: they never reach a log line or an error
message — :attr:`ExportObject.display` is the non-identifying name used for positions.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from pipeline.config import StorageSettings
from pipeline.errors import ConfigError, DecodeError
from pipeline.storage import retry, s3client

LAYOUT = re.compile(
    r"(?:^|/)AWSLogs/(?:(?P<org>o-[a-z0-9]+)/)?(?P<account>\d{12})/"
    r"(?P<kind>CloudTrail|CloudTrail-Digest|CloudTrail-Insight)/(?P<region>[a-z0-9-]+)/"
    r"(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/(?P<name>[^/]+)$"
)
# How many days a since..until range may span before we list whole regions instead of days.
MAX_DAY_PREFIXES = 400
PAGE_SIZE = 1000  # keys per ListObjectsV2 page (the S3 maximum)


@dataclass(frozen=True)
class ExportObject:
    """One object to read. ``key`` identifies (it contains the account id): never log it."""

    bucket: str
    key: str
    size: int
    etag: str
    region: str = ""
    date: str = ""  # YYYY-MM-DD from the path, "" outside the export layout
    kind: str = "events"  # events | insight | other

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def version(self) -> str:
        """What changes when the object is replaced: the manifest compares it."""
        return self.etag

    @property
    def display(self) -> str:
        """A non-identifying, stable name for positions, logs and dead letters."""
        digest = hashlib.sha256(self.uri.encode()).hexdigest()[:12]
        where = "/".join(p for p in (self.region, self.date) if p)
        return f"s3:{where}/{digest}" if where else f"s3:{digest}"


class ExportListing(list[ExportObject]):
    """The objects to read, sorted by date then key, with what was skipped."""

    digests_skipped: int = 0
    outside_layout_skipped: int = 0
    listed: int = 0


def input_storage(storage: StorageSettings) -> StorageSettings:
    """The settings s3:// *inputs* are read with.

    By default the same endpoint and credentials as the output. Setting any of
    ``input_s3_endpoint``, ``input_s3_region``, ``input_s3_access_key`` or ``input_s3_profile``
    switches inputs to their own endpoint and credentials: the usual case of CloudTrail
    exports in an AWS account and output on EU storage. An empty ``input_s3_endpoint`` then
    means AWS itself, named explicitly (``s3.<region>.amazonaws.com``) so that
    ``AWS_ENDPOINT_URL``, which may point at the output provider, is not picked up.
    """
    endpoint = getattr(storage, "input_s3_endpoint", "")
    region = getattr(storage, "input_s3_region", "")
    access_key = getattr(storage, "input_s3_access_key", "")
    profile = getattr(storage, "input_s3_profile", "")
    if not (endpoint or region or access_key or profile):
        return storage
    if not endpoint:  # AWS itself; set input_s3_region to the trail bucket's region
        endpoint = f"https://s3.{region}.amazonaws.com" if region else "https://s3.amazonaws.com"
        region = region or "us-east-1"
    return dataclasses.replace(
        storage, s3_endpoint=endpoint, s3_region=region or storage.s3_region, s3_access_key=access_key,
        s3_secret_key=getattr(storage, "input_s3_secret_key", None), s3_profile=profile,
        s3_path_style=bool(getattr(storage, "input_s3_path_style", False)),
    )


def _as_date(value: dt.date | str | None, what: str) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        raise ConfigError(f"{what} must be a date like 2026-04-29") from None


def parse_key(key: str) -> dict[str, str] | None:
    """The layout fields of an export key (account, region, date, kind), or None."""
    m = LAYOUT.search(key)
    if m is None:
        return None
    return {
        "account": m["account"], "region": m["region"], "kind": m["kind"],
        "date": f"{m['y']}-{m['m']}-{m['d']}",
    }


class _Lister:
    def __init__(self, storage: StorageSettings, bucket: str) -> None:
        self.storage = storage
        self.bucket = bucket
        self.client = s3client.client(storage)

    def _pages(self, **kwargs: Any) -> list[dict[str, Any]]:
        def run() -> list[dict[str, Any]]:
            paginator = self.client.get_paginator("list_objects_v2")
            pages = paginator.paginate(Bucket=self.bucket, PaginationConfig={"PageSize": PAGE_SIZE}, **kwargs)
            return list(pages)

        return retry.call_input(run, storage=self.storage, what="list the input bucket")

    def level(self, prefix: str) -> tuple[list[str], list[dict[str, Any]]]:
        """The 'sub-directories' (common prefixes) and the objects directly below ``prefix``."""
        dirs: list[str] = []
        objects: list[dict[str, Any]] = []
        for page in self._pages(Prefix=prefix, Delimiter="/"):
            dirs.extend(cp["Prefix"] for cp in page.get("CommonPrefixes", []) or [])
            objects.extend(page.get("Contents", []) or [])
        return dirs, objects

    def dirs(self, prefix: str) -> list[str]:
        return self.level(prefix)[0]

    def objects(self, prefix: str) -> Iterator[dict[str, Any]]:
        for page in self._pages(Prefix=prefix):
            yield from page.get("Contents", []) or []


def _day_prefixes(region_prefix: str, since: dt.date, until: dt.date) -> list[str]:
    days = (until - since).days + 1
    return [
        f"{region_prefix}{d:%Y/%m/%d}/"
        for d in (since + dt.timedelta(n) for n in range(max(0, days)))
    ]


def _layout_prefixes(
    lister: _Lister, awslogs: str, accounts: Sequence[str], regions: Sequence[str],
    since: dt.date | None, until: dt.date | None,
) -> list[str]:
    """Walk ``…/AWSLogs/`` down to the narrowest prefixes that can hold matching objects."""
    account_dirs: list[str] = []
    for d in lister.dirs(awslogs):
        name = d[len(awslogs):].rstrip("/")
        if name.startswith("o-"):  # organisation trail: AWSLogs/o-xxx/<account>/
            account_dirs.extend(lister.dirs(d))
        else:
            account_dirs.append(d)
    if accounts:
        account_dirs = [d for d in account_dirs if d.rstrip("/").rsplit("/", 1)[-1] in accounts]
    prefixes: list[str] = []
    for acc in account_dirs:
        for kind_dir in lister.dirs(acc):
            kind = kind_dir.rstrip("/").rsplit("/", 1)[-1]
            if not kind.startswith("CloudTrail"):
                continue
            for region_dir in lister.dirs(kind_dir):
                region = region_dir.rstrip("/").rsplit("/", 1)[-1]
                if regions and region not in regions:
                    continue
                if since and until and (until - since).days < MAX_DAY_PREFIXES:
                    prefixes.extend(_day_prefixes(region_dir, since, until))
                else:
                    prefixes.append(region_dir)
    return prefixes


def expand_s3_inputs(
    uri: str,
    storage: StorageSettings,
    since: dt.date | str | None = None,
    until: dt.date | str | None = None,
    accounts: Iterable[str] = (),
    regions: Iterable[str] = (),
) -> ExportListing:
    """List the CloudTrail objects below ``uri`` that match the filters.

    ``uri`` is ``s3://bucket``, any prefix above or inside ``AWSLogs/``, or one object.
    ``since`` and ``until`` are inclusive dates compared with the date in the object's path.
    With an account, region or date filter, objects outside the export layout are skipped
    (counted); without filters every object below the prefix is read.
    """
    storage = input_storage(storage)
    parsed = s3client.parse_s3_uri(uri)
    since_d, until_d = _as_date(since, "--since"), _as_date(until, "--until")
    if since_d and until_d and until_d < since_d:
        raise ConfigError("--until is before --since")
    if since_d and not until_d:
        until_d = dt.datetime.now(dt.UTC).date()
    account_set, region_set = tuple(sorted(set(accounts))), tuple(sorted(set(regions)))
    filtered = bool(account_set or region_set or since_d or until_d)
    lister = _Lister(storage, parsed.bucket)
    key = parsed.key

    prefixes: list[str]
    direct: list[dict[str, Any]] = []  # objects already listed while walking
    if key and not key.endswith("/") and "AWSLogs" in key.split("/")[-1:]:
        key += "/"
    if key.endswith("AWSLogs/") or key == "AWSLogs/":
        prefixes = _layout_prefixes(lister, key, account_set, region_set, since_d, until_d)
    elif key == "" or key.endswith("/"):
        top, direct = lister.level(key)
        if f"{key}AWSLogs/" in top:
            prefixes = _layout_prefixes(lister, f"{key}AWSLogs/", account_set, region_set, since_d, until_d)
            prefixes += [d for d in top if d != f"{key}AWSLogs/"]  # anything else below the prefix
        else:
            prefixes, direct = [key], []
    else:
        prefixes = [key]  # one object, or a prefix without a trailing slash

    def candidates() -> Iterator[dict[str, Any]]:
        yield from direct
        for prefix in prefixes:
            yield from lister.objects(prefix)

    listing = ExportListing()
    seen: set[str] = set()
    for obj in candidates():
        k = obj["Key"]
        if k in seen or k.endswith("/"):
            continue
        seen.add(k)
        listing.listed += 1
        fields = parse_key(k)
        if fields is None:
            if "/CloudTrail-Digest/" in f"/{k}" or "_CloudTrail-Digest_" in k:
                listing.digests_skipped += 1
                continue
            if filtered:
                listing.outside_layout_skipped += 1
                continue
            listing.append(ExportObject(parsed.bucket, k, int(obj.get("Size", 0)),
                                        str(obj.get("ETag", "")).strip('"'), kind="other"))
            continue
        if fields["kind"] == "CloudTrail-Digest":
            listing.digests_skipped += 1
            continue
        if account_set and fields["account"] not in account_set:
            continue
        if region_set and fields["region"] not in region_set:
            continue
        day = dt.date.fromisoformat(fields["date"])
        if (since_d and day < since_d) or (until_d and day > until_d):
            continue
        listing.append(ExportObject(
            parsed.bucket, k, int(obj.get("Size", 0)), str(obj.get("ETag", "")).strip('"'),
            region=fields["region"], date=fields["date"],
            kind="insight" if fields["kind"] == "CloudTrail-Insight" else "events",
        ))
    listing.sort(key=lambda o: (o.date, o.key))
    return listing


def read_object(storage: StorageSettings, uri_or_key: str | ExportObject, bucket: str = "") -> bytes:
    """The bytes of one object (still gzip-compressed, as stored).

    Accepts an :class:`ExportObject`, an ``s3://bucket/key`` URI, or a bare key with ``bucket``.
    """
    if isinstance(uri_or_key, ExportObject):
        b, k = uri_or_key.bucket, uri_or_key.key
    elif uri_or_key.startswith("s3://"):
        parsed = s3client.parse_s3_uri(uri_or_key)
        b, k = parsed.bucket, parsed.key
    else:
        if not bucket:
            raise ConfigError("read_object needs an s3:// URI or a bucket for a bare key")
        b, k = bucket, uri_or_key
    storage = input_storage(storage)
    client = s3client.client(storage)

    def get() -> bytes:
        resp = client.get_object(Bucket=b, Key=k)
        return bytes(resp["Body"].read())

    return retry.call_input(get, storage=storage, what="read an input object")


def parse_sqs_notification(body: bytes | str) -> list[str]:
    """The ``s3://`` URIs named by a CloudTrail SNS-to-SQS delivery notification.

    Accepts the SNS envelope (``{"Type": "Notification", "Message": "<json>"}``) or the bare
    message (``{"s3Bucket": …, "s3ObjectKey": [...]}``). Duplicate keys are reported once.
    """
    try:
        doc = orjson.loads(body)
        if isinstance(doc, dict) and "s3Bucket" not in doc:
            message = doc.get("Message")
            if not isinstance(message, str):
                raise DecodeError("shape", "the notification has no Message field")
            doc = orjson.loads(message)
    except orjson.JSONDecodeError:
        raise DecodeError("json", "the notification is not valid JSON") from None
    if not isinstance(doc, dict):
        raise DecodeError("shape", "the notification message is not a JSON object")
    bucket, keys = doc.get("s3Bucket"), doc.get("s3ObjectKey")
    if not isinstance(bucket, str) or not bucket or not isinstance(keys, list):
        raise DecodeError("shape", "the notification lacks s3Bucket or s3ObjectKey")
    out: list[str] = []
    for k in keys:
        if not isinstance(k, str) or not k:
            raise DecodeError("shape", "the notification names an object key that is not a string")
        uri = f"s3://{bucket}/{k}"
        if uri not in out:
            out.append(uri)
    return out


__all__ = [
    "ExportListing", "ExportObject", "expand_s3_inputs", "input_storage", "parse_key",
    "parse_sqs_notification", "read_object",
]
