"""Sink faults on real filesystems: a read-only output or lookup location, and a full disk.

The locations are tmpfs mounts (``mount -t tmpfs``; needs root or CAP_SYS_ADMIN, skipped
otherwise). Expected: exit code 4 and one clear line; no traceback; no partial visible file
(every visible Parquet file reads completely, no temporary file left behind); and since the
lookup entries are written before the events, a failing lookup location means no events at all.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.hardening.faults import dataset_rows, event_files, run_args, run_cli, visible_files

pytestmark = [pytest.mark.e2e, pytest.mark.hsm]


@contextmanager
def tmpfs(path: Path, options: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN): {done.stderr.strip()[:200]}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def _assert_clean_failure(done: subprocess.CompletedProcess[str], what: str) -> None:
    assert done.returncode == 4, done.stderr[-3000:]
    last = done.stderr.rstrip().splitlines()[-1]
    assert last.startswith("auditveil: error: ") and what in last, last
    for marker in ("fault1", "eu-user-", "@example.eu", "111122223333"):
        assert marker not in done.stderr + done.stdout


def _assert_nothing_partial(root: Path) -> None:
    for p in event_files(root):
        pq.read_table(p)  # complete, or not there at all
    leftovers = [p for p in root.rglob(".tmp-*")]
    assert leftovers == [], f"{len(leftovers)} temporary file(s) left behind"


def test_read_only_output_location(operator_env: dict[str, str], fault_inputs: tuple[Path, int],
                                   tmp_path: Path) -> None:
    with tmpfs(tmp_path / "out", "ro,size=1m") as out:
        done = run_cli(operator_env, run_args(fault_inputs[0], out, tmp_path / "lookup", "--workers", "1"))
        _assert_clean_failure(done, "output")
        assert visible_files(out) == []


def test_read_only_lookup_location_writes_no_events(operator_env: dict[str, str], fault_inputs: tuple[Path, int],
                                                    tmp_path: Path) -> None:
    out = tmp_path / "out"
    with tmpfs(tmp_path / "lookup", "ro,size=1m") as lookup:
        done = run_cli(operator_env, run_args(fault_inputs[0], out, lookup, "--workers", "1"))
        _assert_clean_failure(done, "output")
        assert visible_files(lookup) == []
    assert event_files(out) == [], "events became visible without their sealed lookup entries"


@pytest.mark.parametrize("where", ["out", "lookup"])
def test_disk_full(operator_env: dict[str, str], fault_inputs: tuple[Path, int], baseline: tuple[Path, list[str]],
                   tmp_path: Path, where: str) -> None:
    out, lookup = tmp_path / "out", tmp_path / "lookup"
    with tmpfs(out if where == "out" else lookup, "size=192k"):
        done = run_cli(operator_env, run_args(fault_inputs[0], out, lookup, "--workers", "1"))
        _assert_clean_failure(done, "output")
        _assert_nothing_partial(out)
        _assert_nothing_partial(lookup)
        written = dataset_rows(out)
        assert len(written) < fault_inputs[1]
        assert set(written) <= set(baseline[1])  # what is there is right
