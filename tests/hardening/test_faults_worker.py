"""A worker process that cannot start, or dies mid-run, must stop the run with one clear line;
a driver that dies must not leave its worker processes behind.

Beam's FnApiRunner waits for ever on a lost worker process (these runs used to hang), and its
SDK harness retries a dead driver for ever (orphans). The runs here end within a bounded time,
with a non-zero exit, our own message and no traceback, and what became visible before the stop
is complete.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hardening.faults import (
    Running,
    assert_visible_output_consistent,
    event_files,
    run_args,
    run_cli,
    wait_for,
    write_fault_inputs,
)

pytestmark = [pytest.mark.e2e, pytest.mark.hsm]


def test_workers_that_cannot_import_auditveil_stop_the_run(operator_env: dict[str, str],
                                                          fault_inputs: tuple[Path, int], tmp_path: Path) -> None:
    # The driver runs from the repository (``-m`` puts it first on sys.path); the workers start
    # with ``-P`` and so find this broken ``pipeline`` package first, as if auditveil were not
    # installed for the interpreter they run.
    shadow = tmp_path / "shadow" / "pipeline"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text('raise ImportError("not installed here")\n')
    env = {**operator_env, "PYTHONPATH": str(shadow.parent)}
    out, lookup = tmp_path / "out", tmp_path / "lookup"
    done = run_cli(env, run_args(fault_inputs[0], out, lookup, "--workers", "2"), timeout=180)  # hung: raises
    assert done.returncode == 2, done.stderr[-2000:]
    assert "a worker process could not import auditveil" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert event_files(out) == []


def _worker_pids(session: int) -> list[int]:
    """The Python worker processes of the run in process group ``session`` (not their shells)."""
    found = subprocess.run(["ps", "-eo", "pid=,pgid=,args="], capture_output=True, text=True, check=True).stdout
    pids = []
    for line in found.splitlines():
        pid, pgid, args = line.split(None, 2)
        if int(pgid) == session and args.startswith(f"{sys.executable} -P -c"):
            pids.append(int(pid))
    return pids


def _long_run(env: dict[str, str], tmp_path: Path) -> tuple[Running, Path, Path]:
    """A 2-worker run long enough to be caught mid-run (its output and lookup folders too)."""
    inputs = tmp_path / "in"
    write_fault_inputs(inputs, files=8, events=2500)
    out, lookup = tmp_path / "out", tmp_path / "lookup"
    return Running(env, run_args(inputs, out, lookup, "--workers", "2"), tmp_path / "run.log"), out, lookup


def _mid_run(run: Running, out: Path) -> None:
    wait_for(lambda: len(event_files(out)) >= 1 or run.proc.poll() is not None, 240, "the first Parquet file")
    assert run.proc.poll() is None, f"the run ended early: {run.output()[-2000:]}"


def _run_folder(workers: list[int]) -> Path:
    """The run's private folder (the workers' hand-off socket), named on their command lines."""
    folders = {m for pid in workers for m in re.findall(r"run_dir='([^']+)'", _cmdline(pid))}
    assert len(folders) == 1
    folder = Path(folders.pop())
    assert folder.is_dir()
    return folder


def _ended(workers: list[int]) -> None:
    wait_for(lambda: not any(Path(f"/proc/{pid}").exists() and _state(pid) != "Z" for pid in workers), 30,
             "the worker processes to end")


def test_a_worker_killed_mid_run_stops_the_run(operator_env: dict[str, str], tmp_path: Path) -> None:
    run, out, lookup = _long_run(operator_env, tmp_path)
    try:
        _mid_run(run, out)
        victims = _worker_pids(run.proc.pid)
        assert victims, "no worker process found"
        os.kill(victims[0], signal.SIGKILL)  # as the kernel's OOM killer would
        code = run.wait(timeout=120)
    finally:
        if run.proc.poll() is None:
            run.kill()
    text = run.output()
    assert code == 1, text[-2000:]
    assert "a worker process stopped unexpectedly (signal 9)" in text
    assert "re-run the same command to finish" in text
    assert "Traceback" not in text
    assert_visible_output_consistent(out, lookup)


def test_workers_end_when_the_driver_is_killed(operator_env: dict[str, str], tmp_path: Path) -> None:
    run, _, _ = _long_run(operator_env, tmp_path)
    try:
        wait_for(lambda: len(_worker_pids(run.proc.pid)) == 2 or run.proc.poll() is not None, 120,
                 "two worker processes")
        assert run.proc.poll() is None, f"the run ended early: {run.output()[-2000:]}"
        workers = _worker_pids(run.proc.pid)
        folder = _run_folder(workers)
        os.kill(run.proc.pid, signal.SIGKILL)  # the driver only, as a supervisor's kill -9 would
        run.proc.wait(timeout=30)
        _ended(workers)
        assert not folder.exists()  # the driver could not remove its private folder: they did
    finally:
        run.kill()


def test_ctrl_c_stops_the_run_and_its_workers(operator_env: dict[str, str], tmp_path: Path) -> None:
    run, out, lookup = _long_run(operator_env, tmp_path)
    try:
        _mid_run(run, out)
        workers = _worker_pids(run.proc.pid)
        assert len(workers) == 2
        folder = _run_folder(workers)
        os.killpg(run.proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole foreground group
        code = run.proc.wait(timeout=60)
        _ended(workers)
        assert not folder.exists()
    finally:
        run.kill()
    text = run.output()
    assert code == 130, text[-2000:]
    assert "Traceback" not in text
    assert_visible_output_consistent(out, lookup)


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return "Z"
