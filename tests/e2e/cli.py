"""Run the installed ``auditveil`` command in a subprocess, as a user would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

AUDITVEIL = str(Path(sys.executable).parent / "auditveil")


def auditveil(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([AUDITVEIL, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False)
