from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pipeline.errors import AuditveilError, ConfigError
from pipeline.run.worker import worker_command, worker_exit_error


def test_no_exit_recorded_is_no_error(tmp_path: Path) -> None:
    assert worker_exit_error(str(tmp_path / "exits")) is None


def test_recorded_exits_become_one_clear_error(tmp_path: Path) -> None:
    exits = tmp_path / "exits"
    exits.write_text("137\n")
    killed = worker_exit_error(str(exits))
    assert type(killed) is AuditveilError and "(signal 9)" in str(killed)
    exits.write_text("1\n")
    assert "(exit status 1)" in str(worker_exit_error(str(exits)))
    exits.write_text("137\n3\n")  # one worker could not start: that is what to fix first
    assert isinstance(worker_exit_error(str(exits)), ConfigError)


def test_the_command_records_a_failed_start(tmp_path: Path) -> None:
    # Run the real command with a broken `pipeline` package first on the path: the worker
    # cannot import auditveil, says so in one line, and the shell records exit status 3.
    shadow = tmp_path / "shadow" / "pipeline"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text('raise ImportError("not installed here")\n')
    exits = tmp_path / "exits"
    # As Beam starts it: Popen(command, shell=True), i.e. /bin/sh -c.
    done = subprocess.run(["/bin/sh", "-c", worker_command(str(exits))], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(shadow.parent)}, check=False)
    assert done.returncode == 0  # the shell succeeded in recording it
    assert exits.read_text().split() == ["3"]
    assert done.stderr.strip() == "auditveil worker: cannot import auditveil in this Python (not installed?)"
    assert sys.executable in worker_command(str(exits))
