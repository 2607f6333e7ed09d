"""Initialise a private SoftHSM2 token for the demo and the tests.

Production HSMs are initialised by their security officers with their own tools; this module
only exists so that ``auditveil demo`` and the test suite get a real PKCS#11 token without
touching the machine-wide SoftHSM2 configuration. The token directory, the configuration
file and a random user PIN (in an owner-only file) live under one folder.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import Pkcs11Settings, Secret
from pipeline.errors import HsmUnavailable

MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)


@dataclass(frozen=True)
class SoftHsmToken:
    """Two SoftHSM2 tokens: the pipeline's (HMAC key) and the custodians' (RSA key pair)."""

    conf_path: Path
    module: str
    label: str
    pin_file: Path
    custodian_label: str
    custodian_pin_file: Path

    def settings(self) -> Pkcs11Settings:
        return Pkcs11Settings(
            module=self.module, token_label=self.label, pin=Secret(self.pin_file.read_text().strip()),
            custodian_token_label=self.custodian_label,
            custodian_pin=Secret(self.custodian_pin_file.read_text().strip()),
        )

    def pipeline_environ(self) -> dict[str, str]:
        """What the pipeline needs: its own token's PIN, the custodian token's label only."""
        return {
            "SOFTHSM2_CONF": str(self.conf_path),
            "AUDITVEIL_PKCS11_MODULE": self.module,
            "AUDITVEIL_PKCS11_TOKEN_LABEL": self.label,
            "AUDITVEIL_PKCS11_PIN_FILE": str(self.pin_file),
            "AUDITVEIL_PKCS11_CUSTODIAN_TOKEN_LABEL": self.custodian_label,
        }

    def environ(self) -> dict[str, str]:
        """Everything, including the custodian PIN file (for key set-up and re-identification)."""
        return {**self.pipeline_environ(), "AUDITVEIL_PKCS11_CUSTODIAN_PIN_FILE": str(self.custodian_pin_file)}


def find_module() -> str:
    for cand in MODULE_CANDIDATES:
        if os.path.exists(cand):
            return cand
    raise HsmUnavailable("SoftHSM2 is not installed (Debian package softhsm2); run scripts/setup.sh")


def ensure_token(home: Path, label: str = "auditveil") -> SoftHsmToken:
    """Create (once) a SoftHSM2 configuration and token under ``home``; return how to reach it.

    Sets ``SOFTHSM2_CONF`` in this process so that the PKCS#11 module loaded here finds it.
    """
    module = find_module()
    util = shutil.which("softhsm2-util")
    if util is None:
        raise HsmUnavailable("softhsm2-util is not installed (Debian package softhsm2); run scripts/setup.sh")
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    tokens = home / "tokens"
    tokens.mkdir(exist_ok=True, mode=0o700)
    conf = home / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
        "slots.removable = false\n"
    )
    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}
    os.environ["SOFTHSM2_CONF"] = str(conf)
    listing = subprocess.run([util, "--show-slots"], env=env, capture_output=True, text=True, check=False)
    custodian_label = f"{label}-custodians"
    pin_file, custodian_pin_file = home / "user.pin", home / "custodian.pin"
    for lab, pfile in ((label, pin_file), (custodian_label, custodian_pin_file)):
        if re.search(rf"^\s*Label:\s+{re.escape(lab)}\s*$", listing.stdout, re.M) and pfile.exists():
            continue
        pin = secrets.token_hex(8)
        fd = os.open(pfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(pin)
        # softhsm2-util takes PINs only as arguments; these are throw-away demo/test tokens.
        done = subprocess.run(
            [util, "--init-token", "--free", "--label", lab, "--pin", pin, "--so-pin", secrets.token_hex(8)],
            env=env, capture_output=True, text=True, check=False,
        )
        if done.returncode != 0:
            raise HsmUnavailable("softhsm2-util could not initialise a demo token")
    return SoftHsmToken(conf, module, label, pin_file, custodian_label, custodian_pin_file)
