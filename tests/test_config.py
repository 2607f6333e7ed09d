from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pytest

from pipeline.config import Secret, Settings, load_settings, read_secret_file
from pipeline.errors import ConfigError

DOC = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


def write(tmp_path: Path, text: str) -> str:
    p = tmp_path / "c.toml"
    p.write_text(text)
    return str(p)


def test_defaults_file_then_environment(tmp_path: Path) -> None:
    path = write(tmp_path, '[pkcs11]\ntoken_label = "from-file"\nkey_version = 2\n[reid]\nquorum = 3\n')
    s = load_settings(path, env={"AUDITVEIL_PKCS11_TOKEN_LABEL": "from-env", "AUDITVEIL_PIPELINE_WORKERS": "4"})
    assert (s.pkcs11.token_label, s.pkcs11.key_version, s.reid.quorum, s.pipeline.workers) == ("from-env", 2, 3, 4)
    assert load_settings(None, env={}).pkcs11.token_label == "auditveil"
    assert load_settings(None, env={"AUDITVEIL_CONFIG": path}).reid.quorum == 3


@pytest.mark.parametrize(("text", "env", "message"), [
    ("[nope]\n", {}, "unknown section"),
    ("[pkcs11]\ntypo = 1\n", {}, "unknown setting pkcs11.typo"),
    ("[pkcs11]\npin = '1234'\n", {}, "must not be written in the configuration file"),
    ("[pkcs11]\nkey_version = 'x'\n", {}, "whole number"),
    ("[storage]\nallow_non_eu = 'maybe'\n", {}, "true or false"),
    ("[pkcs11]\noaep_hash = 'md5'\n", {}, "sha1 or sha256"),
    ("not toml = [", {}, "not valid TOML"),
    ("", {"AUDITVEIL_REID_QUORUM": "0"}, "quorum"),
])
def test_bad_settings_are_clear_errors(tmp_path: Path, text: str, env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        load_settings(write(tmp_path, text), env=env)
    assert "1234" not in str(err.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(str(tmp_path / "nope.toml"), env={})


def test_secrets_never_print_and_pin_files_must_be_private(tmp_path: Path) -> None:
    s = load_settings(None, env={"AUDITVEIL_PKCS11_PIN": "s3cr3t-pin", "AUDITVEIL_STORAGE_S3_SECRET_KEY": "sk"})
    assert "s3cr3t-pin" not in repr(s) and "s3cr3t-pin" not in str(s.redacted())
    assert s.redacted()["pkcs11"]["pin"] == "***"
    assert s.pkcs11.user_pin().reveal() == "s3cr3t-pin"
    pin = tmp_path / "pin"
    pin.write_text("1234\n")
    pin.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        read_secret_file(str(pin), "HSM PIN")
    pin.chmod(0o600)
    assert read_secret_file(str(pin), "HSM PIN") == Secret("1234")


def test_every_setting_is_documented() -> None:
    text = DOC.read_text()
    hints = typing.get_type_hints(Settings)
    for section in dataclasses.fields(Settings):
        for f in dataclasses.fields(hints[section.name]):
            assert f"AUDITVEIL_{section.name.upper()}_{f.name.upper()}" in text, (section.name, f.name)
