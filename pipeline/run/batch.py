"""Build and run the batch pipeline.

Locally it runs on Beam's portable FnApiRunner (what Beam's DirectRunner uses for batch), with
one worker process per core (``pipeline.workers``), chosen explicitly so that nothing tries to
download a runner binary. ``--runner`` and other Beam options can be passed through to run the
same pipeline elsewhere (FlinkRunner, PrismRunner, …).
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.errors import AuditveilError, ConfigError, HsmUnavailable, SinkError
from pipeline.run.failures import raised_errors
from pipeline.run.stages import METRICS_NAMESPACE, Pseudonymise, StageConfig
from pipeline.run.worker import worker_command, worker_exit_error
from pipeline.sources.files import ReadTask


@dataclass(frozen=True)
class BatchResult:
    counters: dict[str, int]
    seconds: float
    workers: int


def pipeline_options(workers: int, beam_args: Sequence[str] = ()) -> PipelineOptions:
    opts: dict[str, Any] = {}
    if not any(a.startswith("--runner") for a in beam_args):
        # The worker processes come from _local_runner's environment, not from Beam's
        # multi_processing mode, so that they start with auditveil's safe logging.
        opts["direct_num_workers"] = workers
        opts["direct_running_mode"] = "in_memory"
    return PipelineOptions(list(beam_args), **opts)


def balanced_shares(tasks: Sequence[ReadTask], workers: int) -> list[list[ReadTask]]:
    """``tasks`` in ``workers`` shares of about equal bytes (largest task first, each to the
    lightest share), each share in plan order."""
    shares: list[list[int]] = [[] for _ in range(max(1, workers))]
    load = [0] * len(shares)
    for i in sorted(range(len(tasks)), key=lambda i: -tasks[i].size):
        lightest = load.index(min(load))
        shares[lightest].append(i)
        load[lightest] += max(tasks[i].size, 1)
    return [[tasks[i] for i in sorted(share)] for share in shares if share]


def build_pipeline(tasks: Sequence[ReadTask], config: StageConfig, options: PipelineOptions,
                   runner: Any = None, local_workers: int = 0) -> beam.Pipeline:
    """The batch pipeline graph: read tasks are spread over workers, then pseudonymised.

    On the local runner (``local_workers`` > 1) each worker process gets one share of about
    equal bytes: that runner hands each worker a fixed part of a stage's input, decided up
    front, so a spread by random keys could leave one worker reading alone at the end.
    Elsewhere a reshuffle lets the runner balance the tasks itself."""
    p = beam.Pipeline(runner=runner, options=options)
    if local_workers > 1:
        spread = (
            p
            | "Plan" >> beam.Create(list(enumerate(balanced_shares(tasks, local_workers))))
            | "Share" >> beam.GroupByKey()
            | "Spread" >> beam.FlatMap(lambda kv: [t for share in kv[1] for t in share])
        )
    else:
        spread = p | "Plan" >> beam.Create(list(tasks)) | "Spread" >> beam.Reshuffle()
    _ = spread | "Pseudonymise" >> Pseudonymise(config)
    return p


# Once a worker has exited early, how long the pipeline thread may take to report it itself.
_WORKER_EXIT_GRACE_S = 5.0


def _local_runner(workers: int, exit_file: str) -> Any:
    """Beam's FnApiRunner; with several workers, each is a subprocess of pipeline.run.worker."""
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.transforms import environments

    if workers <= 1:
        return fn_runner.FnApiRunner()
    env = environments.SubprocessSDKEnvironment.from_command_string(worker_command(exit_file))
    return fn_runner.FnApiRunner(default_environment=env)


def _translate(exc: BaseException) -> AuditveilError:
    """A worker failure → one of our errors, without echoing the runner's text (which quotes
    stack frames and could quote data)."""
    found = raised_errors(exc)
    if isinstance(exc, AuditveilError) and not found & {"HsmUnavailable", "KeyNotFound", "SinkError"}:
        return exc
    if "HsmUnavailable" in found or "KeyNotFound" in found:
        return HsmUnavailable(
            "the HSM became unavailable during the run; auditveil stopped (fail closed). Files already "
            "written are complete; re-run the same command to finish"
        )
    if "SinkError" in found:
        return SinkError("an output location failed during the run; nothing partial is visible. Re-run to finish")
    return AuditveilError(
        f"the pipeline failed in a worker ({type(exc).__name__}); re-run with the same inputs to finish"
    )


def run_batch(tasks: Sequence[ReadTask], config: StageConfig, *, workers: int, beam_args: Sequence[str] = (),
              on_tick: Callable[[], None] | None = None) -> BatchResult:
    """Run the pipeline to completion; ``on_tick`` is called about twice a second meanwhile."""
    with tempfile.TemporaryDirectory(prefix="auditveil-workers-") as run_dir:
        return _run_batch(tasks, config, workers, beam_args, on_tick, os.path.join(run_dir, "exits"))


def _run_batch(tasks: Sequence[ReadTask], config: StageConfig, workers: int, beam_args: Sequence[str],
               on_tick: Callable[[], None] | None, exit_file: str) -> BatchResult:
    options = pipeline_options(workers, beam_args)
    runner = None if any(a.startswith("--runner") for a in beam_args) else _local_runner(workers, exit_file)
    p = build_pipeline(tasks, config, options, runner, workers if runner is not None else 0)
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            result = p.run()
            result.wait_until_finish()
            outcome["result"] = result
        except BaseException as exc:
            outcome["error"] = exc

    start = time.perf_counter()
    thread = threading.Thread(target=target, name="auditveil-pipeline", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.5)
        if on_tick is not None:
            on_tick()
        if thread.is_alive() and (early := worker_exit_error(exit_file)) is not None:
            # The runner would wait for the lost worker for ever. Unless it never started, give
            # the pipeline thread a moment to fail with its own (more precise) error.
            if not isinstance(early, ConfigError):
                thread.join(_WORKER_EXIT_GRACE_S)
            if thread.is_alive():
                raise early
    seconds = time.perf_counter() - start
    if "error" in outcome:
        raise _translate(outcome["error"]) from None
    return BatchResult(collect_counters(outcome["result"]), seconds, workers)


def collect_counters(result: Any) -> dict[str, int]:
    from apache_beam.metrics.metric import MetricsFilter

    counters: dict[str, int] = {}
    try:
        query = result.metrics().query(MetricsFilter().with_namespace(METRICS_NAMESPACE))
    except (AttributeError, NotImplementedError):
        return counters
    for c in query.get("counters", []):
        value = c.committed if c.committed is not None else c.attempted
        counters[c.key.metric.name] = counters.get(c.key.metric.name, 0) + int(value or 0)
    return counters


# Each worker process beyond the first costs about 1.5 s here before it does any work (it
# imports Beam and auditveil while the driver waits). Measured on 2 cores: over 20k CloudTrail
# events (22 MB) two workers took 4.9 s and one 3.3-3.5 s; over 100k (108 MB) two took 5.9-6.9 s
# and one 7.1-7.8 s. So by default another worker is added per this much JSON input.
JSON_BYTES_PER_EXTRA_WORKER = 48 * 1024 * 1024


def default_workers(configured: int, json_bytes: int | None = None) -> int:
    """``configured`` if set (> 0); else one per core, but, given the input's size in bytes of
    JSON, no more than pay for their start-up."""
    if configured > 0:
        return configured
    cores = max(1, os.cpu_count() or 1)
    if json_bytes is None:
        return cores
    return max(1, min(cores, 1 + json_bytes // JSON_BYTES_PER_EXTRA_WORKER))
