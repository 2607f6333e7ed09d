from __future__ import annotations

import random

import pytest

from pipeline.run.batch import balanced_shares
from pipeline.sources.files import ReadTask


def _task(n: int, size: int) -> ReadTask:
    return ReadTask(f"/in/f{n}.jsonl", 0, -1, 1, f"f{n}.jsonl", size)


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_shares_hold_every_task_once_in_plan_order(workers: int) -> None:
    rnd = random.Random(workers)
    tasks = [_task(n, rnd.randrange(1, 10_000_000)) for n in range(25)]
    shares = balanced_shares(tasks, workers)
    assert len(shares) == workers
    assert sorted(t.path for s in shares for t in s) == sorted(t.path for t in tasks)
    for share in shares:
        assert share == sorted(share, key=tasks.index)


def test_shares_balance_bytes_not_task_counts() -> None:
    # One large file and many small ones: a share by count would give one worker most bytes.
    tasks = [_task(0, 90), *(_task(n, 10) for n in range(1, 10))]
    loads = sorted(sum(t.size for t in s) for s in balanced_shares(tasks, 2))
    assert loads == [90, 90]


def test_fewer_tasks_than_workers_leaves_no_empty_share() -> None:
    assert balanced_shares([_task(0, 5)], 4) == [[_task(0, 5)]]


def test_default_workers_are_sized_by_the_input(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.run.sizing import JSON_BYTES_PER_EXTRA_WORKER as STEP
    from pipeline.run.sizing import default_workers

    monkeypatch.setattr("os.cpu_count", lambda: 4)
    assert default_workers(0) == 4  # input not known yet: one per core
    assert default_workers(0, 0) == 1
    assert default_workers(0, STEP - 1) == 1  # too small to pay for a second worker's start-up
    assert default_workers(0, STEP) == 2
    assert default_workers(0, 3 * STEP) == 4
    assert default_workers(0, 100 * STEP) == 4  # never more than the cores
    assert default_workers(3, 0) == 3  # a configured count is taken as it is


def test_a_plan_counts_gzip_inputs_at_their_json_size() -> None:
    from pipeline.run.inputs import GZIP_EXPANSION, Plan

    plain = ReadTask("/in/a.jsonl", 0, -1, 1, "a.jsonl", 1000)
    packed = ReadTask("/in/b.json.gz", 0, -1, 1, "b.json.gz", 100)
    assert Plan((plain, packed), 1100, 0).json_bytes == 1000 + 100 * GZIP_EXPANSION
