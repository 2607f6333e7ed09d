"""Initialise a private SoftHSM2 token for the demo and the tests.

Production HSMs are initialised by their security officers with their own tools; this module
only exists so that ``auditveil demo`` and the test suite get a real PKCS#11 token without
touching the machine-wide SoftHSM2 configuration. The token directory, the configuration
file and a random user PIN (in an owner-only file) live under one folder.
"""

from __future__ import annotations

import os
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
    conf_path: Path
    module: str
    label: str
    pin_file: Path

    def settings(self) -> Pkcs11Settings:
        return Pkcs11Settings(
            module=self.module, token_label=self.label, pin=Secret(self.pin_file.read_text().strip())
        )

    def environ(self) -> dict[str, str]:
        """Variables a child process needs to use this token (the PIN comes from the file)."""
        return {
            "SOFTHSM2_CONF": str(self.conf_path),
            "AUDITVEIL_PKCS11_MODULE": self.module,
            "AUDITVEIL_PKCS11_TOKEN_LABEL": self.label,
            "AUDITVEIL_PKCS11_PIN_FILE": str(self.pin_file),
        }


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
    pin_file = home / "user.pin"
    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}
    os.environ["SOFTHSM2_CONF"] = str(conf)
    listing = subprocess.run([util, "--show-slots"], env=env, capture_output=True, text=True, check=False)
    if f"Label:            {label}" in listing.stdout and pin_file.exists():
        return SoftHsmToken(conf, module, label, pin_file)
    pin = secrets.token_hex(8)
    so_pin = secrets.token_hex(8)
    fd = os.open(pin_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(pin)
    done = subprocess.run(
        [util, "--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", so_pin],
        env=env, capture_output=True, text=True, check=False,
    )
    if done.returncode != 0:
        raise HsmUnavailable("softhsm2-util could not initialise the demo token")
    return SoftHsmToken(conf, module, label, pin_file)
