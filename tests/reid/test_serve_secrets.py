"""`auditveil serve` refuses a TLS private key that others can read."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.cli import main


def test_group_readable_tls_key_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AUDITVEIL_STATE_DIR", str(tmp_path / "state"))
    assert main(["reid", "apikey", "add", "ivan", "--role", "investigator"]) == 0
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_text("not used")
    key.write_text("-----BEGIN PRIVATE KEY-----\n")
    key.chmod(0o640)
    code = main(["serve", "--port", "0", "--lookup", str(tmp_path), "--tls-cert", str(cert),
                 "--tls-key", str(key)])
    assert code == 2
    assert "chmod 600" in capsys.readouterr().err
