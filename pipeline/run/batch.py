"""Build and run the batch pipeline.

Locally it runs on Beam's portable FnApiRunner (what Beam's DirectRunner uses for batch), with
one worker process per core (``pipeline.workers``), chosen explicitly so that nothing tries to
download a runner binary. ``--runner`` and other Beam options can be passed through to run the
same pipeline elsewhere (FlinkRunner, PrismRunner, …).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.errors import AuditveilError, ConfigError, HsmUnavailable, SinkError
from pipeline.run.failures import raised_errors
from pipeline.run.sizing import runs_locally
from pipeline.run.stages import METRICS_NAMESPACE, Pseudonymise, StageConfig
from pipeline.run.worker import WarmWorkers, worker_exit_error
from pipeline.sources.files import ReadTask


@dataclass(frozen=True)
class BatchResult:
    counters: dict[str, int]
    seconds: float
    workers: int


def pipeline_options(workers: int, beam_args: Sequence[str] = ()) -> PipelineOptions:
    opts: dict[str, Any] = {}
    if runs_locally(beam_args):
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


def _local_runner(warm: WarmWorkers | None) -> Any:
    """Beam's FnApiRunner; with ``warm`` workers, its workers are those processes."""
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.transforms import environments

    if warm is None:
        return fn_runner.FnApiRunner()
    env = environments.SubprocessSDKEnvironment.from_command_string(warm.command())
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
              on_tick: Callable[[], None] | None = None, warm: WarmWorkers | None = None) -> BatchResult:
    """Run the pipeline to completion; ``on_tick`` is called about twice a second meanwhile.

    ``warm``: on the local runner with several workers, their processes, started by the caller
    (see run/worker.py); without them the local runner's workers are threads of this process."""
    options = pipeline_options(workers, beam_args)
    local = runs_locally(beam_args)
    runner = _local_runner(warm) if local else None
    p = build_pipeline(tasks, config, options, runner, workers if local else 0)
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
        if thread.is_alive() and warm is not None and (
                early := worker_exit_error(warm.exit_file, warm.exit_codes())) is not None:
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
