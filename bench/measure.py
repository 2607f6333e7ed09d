"""Run one command and measure it: wall time, CPU time of the whole process tree, peak RSS.

CPU time comes from ``getrusage(RUSAGE_CHILDREN)`` before and after: it covers the command and
every descendant it waited for (auditveil's worker processes). Peak RSS is the largest *sum*
of resident memory over the command's process tree, sampled from ``/proc`` every 50 ms: the
number a container's memory limit would see, not one process's maximum.
"""

from __future__ import annotations

import os
import resource
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Measured:
    wall_s: float
    cpu_s: float  # user + system, whole tree
    peak_rss_bytes: int
    load_avg: float  # 1-minute load average at the end: how contended the machine was
    stdout: str
    stderr: str
    returncode: int


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                out.extend(int(c) for c in fh.read().split())
        except OSError:
            continue
    return out


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


def tree_rss(root: int) -> int:
    """Resident bytes of ``root`` and all its descendants right now."""
    total, stack, seen = 0, [root], set()
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += _rss(pid)
        stack.extend(_children(pid))
    return total


class _RssSampler(threading.Thread):
    def __init__(self, pid: int, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self._pid = pid
        self._interval = interval
        self._done = threading.Event()
        self.peak = 0

    def run(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, tree_rss(self._pid))
            self._done.wait(self._interval)

    def stop(self) -> None:
        self._done.set()
        self.join()


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_measured(cmd: Sequence[str], env: Mapping[str, str] | None = None, cwd: str | None = None,
                 timeout: float = 3600) -> Measured:
    cpu0 = _cpu()
    t0 = time.perf_counter()
    proc = subprocess.Popen(list(cmd), env=dict(env) if env is not None else None, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = _RssSampler(proc.pid)
    sampler.start()
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sampler.stop()
    wall = time.perf_counter() - t0
    return Measured(wall, _cpu() - cpu0, sampler.peak, os.getloadavg()[0], out, err, proc.returncode)
