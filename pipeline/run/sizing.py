"""How many local worker processes a batch run uses."""

from __future__ import annotations

import os
from collections.abc import Sequence

from pipeline.run.inputs import Plan

# Each worker process beyond the first costs about a second here before it does any work (it
# imports Beam and auditveil; see run/worker.py). Measured on 2 cores, three runs each: 20k
# CloudTrail events (22 MB) took 3.3-3.6 s on one worker and 4.4-4.6 s on two; 50k (54 MB)
# 5.1-5.4 s on one and 5.3-6.1 s on two; 100k (108 MB) 7.1-7.8 s on one and 5.9-6.9 s on two.
# So by default another worker is added per this much JSON input.
JSON_BYTES_PER_EXTRA_WORKER = 64 * 1024 * 1024


def default_workers(configured: int, json_bytes: int | None = None) -> int:
    """``configured`` if set (> 0); else one per core, but, given the input's size in bytes of
    JSON, no more than pay for their start-up."""
    if configured > 0:
        return configured
    cores = max(1, os.cpu_count() or 1)
    if json_bytes is None:
        return cores
    return max(1, min(cores, 1 + json_bytes // JSON_BYTES_PER_EXTRA_WORKER))


def workers_for(plan: Plan, configured: int) -> int:
    """The workers of a run over ``plan``: never more than it has read tasks."""
    return max(1, min(default_workers(configured, plan.json_bytes), len(plan.tasks) or 1))


def runs_locally(beam_args: Sequence[str]) -> bool:
    """Whether the run uses Beam's local runner (no ``--runner`` among the Beam options)."""
    return not any(a.startswith("--runner") for a in beam_args)
