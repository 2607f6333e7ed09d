"""The destination guard: EU/EEA regions only (unless allowed), US-headquartered providers flagged."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline.config import StorageSettings
from pipeline.errors import ConfigError, JurisdictionError
from pipeline.storage.jurisdiction import assess, check_destination, load_rules


@pytest.fixture(autouse=True)
def _no_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)


def st(endpoint: str = "", region: str = "", **kw: object) -> StorageSettings:
    return StorageSettings(s3_endpoint=endpoint, s3_region=region, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("endpoint", "region", "provider", "found_region"), [
    ("https://s3.fr-par.scw.cloud", "", "scaleway", "fr-par"),
    ("https://s3.nl-ams.scw.cloud", "", "scaleway", "nl-ams"),
    ("https://s3.gra.io.cloud.ovh.net", "", "ovhcloud", "gra"),
    ("https://s3.eu-west-par.io.cloud.ovh.net", "", "ovhcloud", "eu-west-par"),
    ("https://fsn1.your-objectstorage.com", "", "hetzner", "fsn1"),
    ("https://s3.eu-central-2.ionoscloud.com", "", "ionos", "eu-central-2"),
    ("https://s3-eu-central-1.ionoscloud.com", "", "ionos", "eu-central-1"),
    ("https://sos-de-fra-1.exo.io", "", "exoscale", "de-fra-1"),
    ("http://127.0.0.1:9000", "eu-central-1", "self-hosted", "eu-central-1"),
    ("https://minio.example.internal", "de", "self-hosted", "de"),
    ("https://storage.example.eu", "fr-par", "self-hosted", "fr-par"),
])
def test_eu_providers_pass_silently(endpoint: str, region: str, provider: str, found_region: str) -> None:
    verdict, region_problem, provider_problem = assess("s3://bucket/out", st(endpoint, region))
    assert (verdict.provider, verdict.region) == (provider, found_region)
    assert region_problem is None and provider_problem is None
    assert check_destination("s3://bucket/out", st(endpoint, region)) == []
    assert check_destination("s3://bucket/out", st(endpoint, region), strict_sovereignty=True) == []


@pytest.mark.parametrize(("endpoint", "region", "name"), [
    ("", "eu-central-1", "Amazon Web Services"),
    ("https://s3.eu-west-3.amazonaws.com", "", "Amazon Web Services"),
    ("https://bucket.s3.dualstack.eu-north-1.amazonaws.com", "", "Amazon Web Services"),
    ("https://storage.googleapis.com", "europe-west3", "Google Cloud"),
    ("https://acct.blob.core.windows.net", "westeurope", "Microsoft Azure"),
    ("https://acct.eu.r2.cloudflarestorage.com", "", "Cloudflare R2"),
    ("https://fra1.digitaloceanspaces.com", "", "DigitalOcean Spaces"),
    ("https://s3.eu-central-003.backblazeb2.com", "", "Backblaze B2"),
    ("https://s3.eu-central-1.wasabisys.com", "", "Wasabi"),
])
def test_us_headquartered_provider_in_eu_region_warns_or_is_refused(
    endpoint: str, region: str, name: str,
) -> None:
    warnings = check_destination("s3://bucket/out", st(endpoint, region))
    assert len(warnings) == 1
    assert name in warnings[0] and "US-headquartered" in warnings[0] and "CLOUD Act" in warnings[0]
    with pytest.raises(JurisdictionError) as err:
        check_destination("s3://bucket/out", st(endpoint, region), strict_sovereignty=True)
    assert str(err.value).startswith("refusing to write under --strict-sovereignty: ")
    assert err.value.exit_code == 5
    # The setting works like the flag.
    with pytest.raises(JurisdictionError):
        check_destination("s3://bucket/out", st(endpoint, region, strict_sovereignty=True))


@pytest.mark.parametrize(("endpoint", "region", "shown"), [
    ("", "us-east-1", "'us-east-1'"),
    ("https://s3.us-west-2.amazonaws.com", "eu-central-1", "'us-west-2'"),  # the host wins
    ("", "eu-west-2", "'eu-west-2'"),  # London: outside the EU/EEA
    ("", "eu-central-2", "'eu-central-2'"),  # Zurich
    ("https://s3.bhs.io.cloud.ovh.net", "", "'bhs'"),  # OVHcloud Canada
    ("https://s3.uk.io.cloud.ovh.net", "", "'uk'"),
    ("https://hil.your-objectstorage.com", "", "'hil'"),  # Hetzner, US
    ("https://storage.googleapis.com", "us-central1", "'us-central1'"),
    ("http://127.0.0.1:9000", "us-east-1", "'us-east-1'"),  # a self-hosted server said so
])
def test_non_eu_region_is_refused_unless_allowed(endpoint: str, region: str, shown: str) -> None:
    with pytest.raises(JurisdictionError) as err:
        check_destination("s3://bucket/out", st(endpoint, region))
    msg = str(err.value)
    assert msg.startswith("refusing to write: ") and shown in msg and "--allow-non-eu" in msg
    assert msg.count(". ") == 0  # one sentence
    warnings = check_destination("s3://bucket/out", st(endpoint, region), allow_non_eu=True)
    assert any("outside the EU/EEA as allowed by --allow-non-eu" in w for w in warnings)
    assert check_destination("s3://bucket/out", st(endpoint, region, allow_non_eu=True))


def test_known_provider_without_region_is_refused() -> None:
    with pytest.raises(JurisdictionError, match="no region is configured"):
        check_destination("s3://bucket/out", st("", ""))  # AWS would default to us-east-1
    with pytest.raises(JurisdictionError, match="Google Cloud but no region"):
        check_destination("s3://b/o", st("https://storage.googleapis.com", ""))


def test_self_hosted_without_region_warns() -> None:
    warnings = check_destination("s3://bucket/out", st("http://localhost:9000", ""))
    assert len(warnings) == 1 and "self-hosted" in warnings[0] and "cannot check" in warnings[0]
    unknown = check_destination("s3://bucket/out", st("https://objects.example.com", ""))
    assert "unknown provider" in unknown[0]


def test_region_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://s3.fr-par.scw.cloud")
    assert check_destination("s3://b/o", st()) == []
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://s3.amazonaws.com")
    monkeypatch.setenv("AWS_REGION", "ap-southeast-2")
    with pytest.raises(JurisdictionError, match="'ap-southeast-2'"):
        check_destination("s3://b/o", st())


def test_local_paths_pass() -> None:
    assert check_destination("/tmp/out", st("", "us-east-1")) == []
    assert check_destination("relative/out", st("", ""), strict_sovereignty=True) == []


def test_messages_never_name_the_host_or_bucket() -> None:
    endpoint = "https://acct-7731.blob.core.windows.net"
    warnings = check_destination("s3://secret-bucket/out", st(endpoint, "westeurope"))
    with pytest.raises(JurisdictionError) as err:
        check_destination("s3://secret-bucket/out", st(endpoint, "uksouth"))
    for text in [*warnings, str(err.value)]:
        assert "acct-7731" not in text and "secret-bucket" not in text


def test_data_file_is_complete_and_consistent() -> None:
    rules = load_rules()
    ids = {p.id for p in rules.providers}
    assert {"aws", "gcp", "azure", "ovhcloud", "scaleway", "hetzner", "ionos"} <= ids
    us = {p.id for p in rules.providers if p.us_headquartered}
    assert us >= {"aws", "gcp", "azure"} and not us & {"ovhcloud", "scaleway", "hetzner", "ionos"}
    suffixes = {s for p in rules.providers for s in p.endpoint_suffixes}
    assert {"amazonaws.com", "googleapis.com", "core.windows.net"} <= suffixes
    # No UK or Swiss region sneaks onto an EU/EEA list.
    for p in rules.providers:
        for r in p.eu_regions:
            non_eea = r"(^|-)(uk|gb|lon|london|zurich|ch)(-|$)|switzerland|uksouth|ukwest"
            assert not re.search(non_eea, r), (p.id, r)
    assert "eu-west-2" not in next(p for p in rules.providers if p.id == "aws").eu_regions


def test_custom_data_file(tmp_path: Path) -> None:
    own = tmp_path / "j.toml"
    own.write_text('version = 1\n[self_hosted]\neu_regions = ["lab"]\nlocal_hosts = []\n'
                   '[[providers]]\nid = "x"\nname = "X"\nus_headquartered = false\n'
                   'endpoint_suffixes = ["x.example"]\neu_regions = ["x1"]\n')
    assert check_destination("s3://b/o", st("https://s3.x.example", "x1", jurisdiction_file=str(own))) == []
    with pytest.raises(JurisdictionError):
        check_destination("s3://b/o", st("https://s3.x.example", "x2", jurisdiction_file=str(own)))
    bad = tmp_path / "bad.toml"
    bad.write_text("[[providers]]\nid = 1\n")
    with pytest.raises(ConfigError):
        check_destination("s3://b/o", st("https://s3.x.example", "x1", jurisdiction_file=str(bad)))
