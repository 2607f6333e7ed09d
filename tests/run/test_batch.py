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
