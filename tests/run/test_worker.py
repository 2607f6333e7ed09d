from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from pipeline.errors import AuditveilError, ConfigError
from pipeline.run.worker import WarmWorkers, worker_exit_error


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


def test_a_worker_that_cannot_import_auditveil_says_so_and_exits_3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   capfd: pytest.CaptureFixture[str]) -> None:
    # A broken `pipeline` package first on the path: the worker cannot import auditveil, says
    # so in one line, and exits 3, which the driver turns into one clear error.
    shadow = tmp_path / "shadow" / "pipeline"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text('raise ImportError("not installed here")\n')
    monkeypatch.setenv("PYTHONPATH", str(shadow.parent))
    with WarmWorkers(1) as warm:
        deadline = time.monotonic() + 60
        while not warm.exit_codes() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert warm.exit_codes() == [3]
        assert isinstance(worker_exit_error(warm.exit_file, warm.exit_codes()), ConfigError)
    assert capfd.readouterr().err.strip() == "auditveil worker: cannot import auditveil in this Python (not installed?)"


def test_a_failed_hand_off_is_recorded_by_the_shell(tmp_path: Path) -> None:
    # As Beam starts it: Popen(command, shell=True), i.e. /bin/sh -c. No worker takes the
    # hand-off (they are stopped first): the shell records the failure in the exit file.
    warm = WarmWorkers(1)
    warm.close()
    os.makedirs(os.path.dirname(warm.exit_file))
    done = subprocess.run(["/bin/sh", "-c", warm.command()], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0  # the shell succeeded in recording it
    assert open(warm.exit_file).read().split() == ["1"]
    assert "Traceback" not in done.stderr
    assert sys.executable in warm.command()


def test_warm_workers_are_stopped_and_cleaned_up_when_unused() -> None:
    with WarmWorkers(2) as warm:
        folder = os.path.dirname(warm.socket_path)
        assert os.path.exists(warm.socket_path) and oct(os.stat(folder).st_mode & 0o777) == "0o700"
        assert warm.exit_codes() == []
    assert not os.path.exists(folder)
    assert warm.exit_codes() == []  # stopped by us (SIGTERM) is not a failure the driver reports


def test_a_deep_temporary_folder_still_leaves_room_for_the_socket(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    monkeypatch.setattr(tempfile, "tempdir", str(deep))
    with WarmWorkers(1) as warm:
        assert len(warm.socket_path.encode()) <= 100 and warm.socket_path.startswith("/tmp/")
        assert oct(os.stat(os.path.dirname(warm.socket_path)).st_mode & 0o777) == "0o700"
    assert not list(deep.iterdir())  # the folder tried first was removed


def test_workers_that_cannot_start_are_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise BlockingIOError("Resource temporarily unavailable")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    with pytest.raises(ConfigError, match=r"cannot start the worker processes \(BlockingIOError\)"):
        WarmWorkers(2)
