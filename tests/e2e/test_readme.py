"""The README's re-identification walkthrough, pasted into a shell as a newcomer would."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.hsm]
README = Path(__file__).resolve().parents[2] / "README.md"


def test_reidentification_walkthrough_runs_as_written(tmp_path: Path) -> None:
    text = README.read_text()
    section = text[text.index("## Re-identification"):]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUDITVEIL_", "SOFTHSM2"))}
    env.update(HOME=str(tmp_path), AUDITVEIL_STATE_DIR=str(tmp_path / "state"),
               PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}")
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", block.group(1)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert '"203.0.113.77"' in done.stdout
    assert '"arn:aws:iam::111122223333:user/alice.martin"' in done.stdout
    assert re.search(r"audit log OK: \d+ records", done.stdout)
