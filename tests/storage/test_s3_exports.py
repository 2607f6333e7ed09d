"""Listing and reading CloudTrail exports on a real S3-compatible server."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import ConfigError, DecodeError, InputError
from pipeline.storage import s3_exports
from pipeline.storage.s3_exports import expand_s3_inputs, parse_sqs_notification, read_object
from tests.services.s3 import FaultProxy, S3Server
from tests.storage import export_tree
from tests.storage.export_tree import ACCOUNT_A, ACCOUNT_B, ExportTree

pytestmark = pytest.mark.s3


@pytest.fixture(scope="module")
def tree(s3: S3Server, fixtures_dir: Path) -> ExportTree:
    bucket = s3.make_bucket("exports")
    return export_tree.build(s3.client(), bucket, fixtures_dir)


def _events(tree: ExportTree, account: str = "", region: str = "", days: tuple[str, ...] = ()) -> set[str]:
    return {
        k for k in tree.events
        if (not account or f"/{account}/" in k) and (not region or f"/{region}/" in k)
        and (not days or any(f"/{d}/" in k for d in days))
    }


def test_lists_every_log_object_and_counts_digests(s3: S3Server, tree: ExportTree) -> None:
    listing = expand_s3_inputs(tree.uri, s3.storage())
    keys = {o.key for o in listing}
    # Every event file and the Insight file, plus the object outside the layout (no filters).
    assert keys == set(tree.events) | set(tree.insight) | set(tree.outside)
    assert listing.digests_skipped == len(tree.digests)
    assert not any("Digest" in k for k in keys)
    kinds = {o.key: o.kind for o in listing}
    assert kinds[tree.insight[0]] == "insight"
    assert kinds[tree.outside[0]] == "other"
    # Sizes and ETags come from the listing; sorted by path date.
    by_key = {o.key: o for o in listing}
    some = next(iter(tree.events))
    assert by_key[some].size == len(tree.events[some])
    assert by_key[some].etag and '"' not in by_key[some].etag
    dated = [o.date for o in listing if o.date]
    assert dated == sorted(dated)


def test_display_never_shows_the_account(s3: S3Server, tree: ExportTree) -> None:
    listing = expand_s3_inputs(tree.uri, s3.storage())
    for obj in listing:
        assert ACCOUNT_A not in obj.display and ACCOUNT_B not in obj.display
        assert obj.bucket not in obj.display
    displays = [o.display for o in listing]
    assert len(set(displays)) == len(displays)


def test_filters_by_account_region_and_dates(s3: S3Server, tree: ExportTree) -> None:
    st = s3.storage()
    only_b = expand_s3_inputs(tree.uri, st, accounts=[ACCOUNT_B])
    assert {o.key for o in only_b} == _events(tree, account=ACCOUNT_B)  # through the org trail
    assert only_b.outside_layout_skipped == 1

    west = expand_s3_inputs(tree.uri, st, regions=["eu-west-1"])
    assert {o.key for o in west} == _events(tree, region="eu-west-1")

    day = expand_s3_inputs(tree.uri, st, since="2026-04-29", until="2026-04-29")
    assert {o.key for o in day} == _events(tree, days=("2026/04/29",)) | set(tree.insight)

    combo = expand_s3_inputs(tree.uri, st, since="2026-04-29", until="2026-04-30",
                             accounts=[ACCOUNT_A], regions=["eu-central-1", "us-east-1"])
    expected = {k for k in _events(tree, account=ACCOUNT_A, days=("2026/04/29", "2026/04/30"))
                if "/eu-west-1/" not in k} | set(tree.insight)
    assert {o.key for o in combo} == expected

    # since without until: up to today.
    assert {o.key for o in expand_s3_inputs(tree.uri, st, since="2026-04-30")} == _events(
        tree, days=("2026/04/30",))


def test_uri_at_any_level_of_the_layout(s3: S3Server, tree: ExportTree) -> None:
    st = s3.storage()
    at_awslogs = expand_s3_inputs(f"{tree.uri}AWSLogs", st)
    assert {o.key for o in at_awslogs} == set(tree.events) | set(tree.insight)
    region_dir = f"{tree.uri}AWSLogs/{ACCOUNT_A}/CloudTrail/eu-west-1/"
    got = expand_s3_inputs(region_dir, st, since="2026-04-30", until="2026-04-30")
    assert {o.key for o in got} == _events(tree, account=ACCOUNT_A, region="eu-west-1", days=("2026/04/30",))
    one = next(iter(sorted(tree.events)))
    single = expand_s3_inputs(f"s3://{tree.bucket}/{one}", st)
    assert [o.key for o in single] == [one]
    bucket_root = expand_s3_inputs(f"s3://{tree.bucket}", st, accounts=[ACCOUNT_A], regions=["us-east-1"])
    assert {o.key for o in bucket_root} == _events(tree, account=ACCOUNT_A, region="us-east-1")


def test_paginates(s3: S3Server, tree: ExportTree, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3_exports, "PAGE_SIZE", 3)
    listing = expand_s3_inputs(tree.uri, s3.storage())
    assert len(listing) == len(tree.events) + len(tree.insight) + len(tree.outside)


def test_reads_object_bytes(s3: S3Server, tree: ExportTree) -> None:
    st = s3.storage()
    listing = expand_s3_inputs(tree.uri, st, accounts=[ACCOUNT_A], regions=["eu-central-1"])
    for obj in listing[:3]:
        assert read_object(st, obj) == tree.events.get(obj.key) or obj.kind == "insight"
    key = next(iter(tree.events))
    assert read_object(st, f"s3://{tree.bucket}/{key}") == tree.events[key]
    assert read_object(st, key, bucket=tree.bucket) == tree.events[key]


def test_missing_object_and_bucket_are_clear_errors(s3: S3Server, tree: ExportTree) -> None:
    st = s3.storage()
    with pytest.raises(InputError) as missing:
        read_object(st, f"s3://{tree.bucket}/AWSLogs/{ACCOUNT_A}/nothing.json.gz")
    assert "does not exist" in str(missing.value) and ACCOUNT_A not in str(missing.value)
    with pytest.raises(InputError) as no_bucket:
        expand_s3_inputs("s3://no-such-bucket-auditveil/AWSLogs/", st)
    assert "bucket does not exist" in str(no_bucket.value)
    assert "no-such-bucket" not in str(no_bucket.value)


def test_bad_dates_are_config_errors(s3: S3Server, tree: ExportTree) -> None:
    with pytest.raises(ConfigError):
        expand_s3_inputs(tree.uri, s3.storage(), since="29/04/2026")
    with pytest.raises(ConfigError):
        expand_s3_inputs(tree.uri, s3.storage(), since="2026-04-30", until="2026-04-29")


def test_sqs_notification(fixtures_dir: Path) -> None:
    uris = parse_sqs_notification((fixtures_dir / "SQSMessageBody").read_bytes())
    assert uris == [
        "s3://my-test-bucket/myprefix/AWSLogs/123456789012/CloudTrail/us-east-1/2014/03/09/"
        "123456789012_CloudTrail_us-east-1_20140309T2015Z_996mpJdKNLd1Yvzl.json.gz"
    ]
    with pytest.raises(DecodeError) as bad:
        parse_sqs_notification((fixtures_dir / "SQSMessageBodyWrongFormat").read_bytes())
    assert bad.value.error_class == "shape" and "123456789012" not in str(bad.value)
    with pytest.raises(DecodeError):
        parse_sqs_notification(b"{not json")
    bare = parse_sqs_notification(b'{"s3Bucket": "b", "s3ObjectKey": ["k1", "k2"]}')
    assert bare == ["s3://b/k1", "s3://b/k2"]


def test_parse_key_layout() -> None:
    key = ("x/AWSLogs/o-abc123/111122223333/CloudTrail/eu-west-3/2026/01/02/"
           "111122223333_CloudTrail_eu-west-3_20260102T0000Z_abc.json.gz")
    assert s3_exports.parse_key(key) == {
        "account": "111122223333", "region": "eu-west-3", "kind": "CloudTrail", "date": "2026-01-02"}
    assert s3_exports.parse_key("AWSLogs/111122223333/CloudTrail/eu-west-3/2026/01/02/") is None
    assert s3_exports.parse_key("random/file.json.gz") is None


def test_input_settings_default_to_the_output_ones() -> None:
    from pipeline.config import Secret, StorageSettings
    from pipeline.storage.s3_exports import input_storage

    out = StorageSettings(s3_endpoint="https://s3.fr-par.scw.cloud", s3_region="fr-par", s3_access_key="SCW1")
    assert input_storage(out) is out
    aws = input_storage(StorageSettings(
        s3_endpoint="https://s3.fr-par.scw.cloud", s3_region="fr-par", s3_access_key="SCW1",
        input_s3_region="eu-west-1", input_s3_access_key="AKIAEXAMPLE", input_s3_secret_key=Secret("s")))
    assert (aws.s3_endpoint, aws.s3_region, aws.s3_access_key, aws.s3_path_style) == (
        "https://s3.eu-west-1.amazonaws.com", "eu-west-1", "AKIAEXAMPLE", False)
    assert aws.s3_secret_key == Secret("s")
    profile_only = input_storage(StorageSettings(input_s3_profile="trail-reader"))
    assert (profile_only.s3_endpoint, profile_only.s3_region) == ("https://s3.amazonaws.com", "us-east-1")


def test_inputs_and_outputs_on_different_endpoints(s3: S3Server, tree: ExportTree, s3_proxy: FaultProxy) -> None:
    """Output endpoint down (the proxy answers 503), input endpoint fine: reading works."""
    from pipeline.config import Secret
    from pipeline.storage import fs

    storage = s3.storage(via_proxy=True, s3_retry_seconds=1, input_s3_endpoint=s3.endpoint,
                         input_s3_region=s3.region, input_s3_access_key=s3.access_key,
                         input_s3_secret_key=Secret(s3.secret_key), input_s3_path_style=True)
    s3_proxy.fail_for(30)
    listing = expand_s3_inputs(tree.uri, storage, accounts=[ACCOUNT_A], regions=["eu-west-1"])
    assert {o.key for o in listing} == _events(tree, account=ACCOUNT_A, region="eu-west-1")
    assert read_object(storage, listing[0]) == tree.events[listing[0].key]
    out = fs.resolve(f"s3://{tree.bucket}/out", storage)
    with pytest.raises(Exception, match="kept failing"):
        fs.write_bytes_atomic(out, out.join("x"), b"x")
