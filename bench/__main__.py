"""``python -m bench``: auditveil against the hand-written baseline, same input, same invocation.

Steps (each can be skipped):

1. start-up: ``auditveil run`` over 100 events, per worker count (start-up + shut-down cost);
2. CloudTrail throughput: ``--events`` events (default 200,000) from the reference generator;
   per repetition the baseline and ``auditveil run`` with each worker count, the order rotated
   every repetition so that drifting machine load does not favour one side;
3. identifier cardinality: the same at several ``--customers`` values (one worker count);
4. a Vault audit workload (``bench/gen_vault.py``);
5. memory: one run over ``--memory-events`` events (default 2,000,000) and its peak RSS;
6. streaming: sustained events/s and produce-to-visible delay on a local Kafka broker
   (``bench/stream.py``; skipped when Kafka or Prism is not installed);
7. floor: the costs no implementation can avoid here (``import apache_beam``, one HSM call per
   distinct value, decoding the input) and the ceiling ratio they leave (``bench/floor.py``);
   it uses the CloudTrail step's results, from this invocation or an earlier one.

``--steps`` picks steps; results of earlier invocations in the same work directory are kept
in ``results.json`` and only the steps run now are replaced.

Everything runs against a private SoftHSM2 token (the real HSM path), the shipped policies
and real lookup-entry sealing. Results: a table on stdout, ``results.json`` in the work
directory, and the chart (``--chart``, default docs/img/throughput.png).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from bench import report, workloads
from bench.floor import describe, measure_floor
from bench.runs import REFERENCE, REPO, RunResult, run_auditveil, run_baseline

STEPS = ("startup", "cloudtrail", "cardinality", "vault", "memory", "stream", "floor")


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _default_workdir() -> str:
    import tempfile

    return os.path.join(tempfile.gettempdir(), "auditveil-bench")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=200_000, help="CloudTrail events per run (default 200000)")
    ap.add_argument("--reps", type=int, default=3, help="repetitions of the main comparison (default 3)")
    ap.add_argument("--workers", type=_ints, default=[1, 2], help="worker counts, comma-separated (default 1,2)")
    ap.add_argument("--cardinalities", type=_ints, default=[1_000, 10_000, 100_000, 1_000_000],
                    help="generator --customers values for the cardinality sweep ('' to skip)")
    ap.add_argument("--cardinality-events", type=int, default=100_000)
    ap.add_argument("--vault-events", type=int, default=100_000, help="Vault entries (0 to skip)")
    ap.add_argument("--memory-events", type=int, default=2_000_000, help="events of the memory run (0 to skip)")
    ap.add_argument("--compare-code", default="", metavar="DIR",
                    help="also run the pipeline package of this source tree (e.g. an older revision: "
                         "git archive REV pipeline schemas | tar -x -C DIR) in the CloudTrail step, 1 worker")
    ap.add_argument("--stream-events", type=int, default=150_000, help="events of the streaming runs")
    ap.add_argument("--stream-window", type=int, default=10, help="streaming window, seconds")
    ap.add_argument("--steps", default=",".join(STEPS), help=f"comma-separated subset of {','.join(STEPS)}")
    ap.add_argument("--skip-startup", action="store_true")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 20000 events, 1 repetition, no sweep, no Vault, no memory run")
    ap.add_argument("--workdir", default=os.environ.get("AUDITVEIL_BENCH_DIR") or _default_workdir(),
                    help="generated inputs (kept between runs), scratch output, results.json")
    ap.add_argument("--chart", default=str(REPO / "docs" / "img" / "throughput.png"), help="PNG to write ('' to skip)")
    ap.add_argument("--json", default="", help="also copy results.json here")
    a = ap.parse_args(argv)
    a.steps = {s.strip() for s in a.steps.split(",") if s.strip()}
    if unknown := a.steps - set(STEPS):
        ap.error(f"unknown step(s): {', '.join(sorted(unknown))}")
    if a.quick:
        a.events, a.reps = 20_000, 1
        a.steps -= {"cardinality", "vault", "memory", "stream"}
    if a.skip_startup:
        a.steps.discard("startup")
    if not a.cardinalities:
        a.steps.discard("cardinality")
    if not a.vault_events:
        a.steps.discard("vault")
    if not a.memory_events:
        a.steps.discard("memory")
    if not a.stream_events:
        a.steps.discard("stream")
    return a


def _say(text: str) -> None:
    print(text, flush=True)


def _line(r: RunResult) -> str:
    extra = f", HSM calls {r.hsm_calls:,}, distinct {r.distinct_pairs:,}" if r.what == "auditveil" else ""
    return (f"  {r.what:<9} w={r.workers} {r.workload:<10} {r.events:>9,} ev  {r.wall_s:7.2f} s wall "
            f"{r.cpu_s:7.2f} s cpu  {r.events_per_s:9,.0f} ev/s  RSS {r.peak_rss_bytes / report.MIB:6.0f} MiB"
            f"  load {r.load_avg:.1f}{extra}")


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    work = Path(a.workdir)
    work.mkdir(parents=True, exist_ok=True)
    scratch = work / "scratch"
    scratch.mkdir(exist_ok=True)
    env = workloads.hsm_env(work)
    base_sha = hashlib.sha256((REFERENCE / "baseline.py").read_bytes()).hexdigest()[:16]
    previous = work / "results.json"
    results: dict[str, Any] = json.loads(previous.read_text()) if previous.exists() else {}
    results |= {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "baseline_sha256_16": base_sha,
        "args": {k: sorted(v) if isinstance(v, set) else v for k, v in vars(a).items()},
    }
    _say(f"auditveil benchmark — {os.cpu_count()} CPUs, baseline.py sha256 {base_sha}…, workdir {work}")

    if "startup" in a.steps:
        _say("\n[1] start-up + shut-down (100 events)")
        small = workloads.tiny(work)
        startup = {}
        for w in a.workers:
            split = {**env, "AUDITVEIL_PIPELINE_SPLIT_BYTES": "8192"}  # several tasks, so w workers start
            runs = [run_auditveil([small], 100, scratch, split, w) for _ in range(2)]
            for r in runs:
                _say(_line(r))
            startup[w] = round(report.median([r.wall_s for r in runs]), 2)
        results["startup_seconds"] = startup

    base: list[RunResult] = []
    rows: list[dict[str, Any]] = []
    if "cloudtrail" in a.steps or "vault" in a.steps:
        _say(f"\n[2] CloudTrail, {a.events:,} events, {a.reps} repetition(s)")
        ct = workloads.cloudtrail(work, a.events)
        mine: dict[int, list[RunResult]] = {w: [] for w in a.workers}
        mine[-1] = []
        configs: list[int] = [0, *a.workers] if "cloudtrail" in a.steps else [0]  # 0 = baseline
        if a.compare_code and "cloudtrail" in a.steps:
            configs.append(-1)  # -1 = the other source tree, one worker
        for rep in range(a.reps):
            order = configs[rep % len(configs):] + configs[:rep % len(configs)]
            for c in order:
                if c == 0:
                    r = run_baseline(ct, a.events, scratch)
                elif c < 0:
                    r = run_auditveil([ct], a.events, scratch, env, 1, code=a.compare_code)
                else:
                    r = run_auditveil([ct], a.events, scratch, env, c)
                (base if c == 0 else mine[c]).append(r)
                _say(_line(r))
        if "cloudtrail" in a.steps:
            rows = [report.summarise(mine[w], base) for w in a.workers]
            if mine[-1]:
                rows.append(report.summarise(mine[-1], base) | {"workload": f"cloudtrail @{Path(a.compare_code).name}"})
            results["cloudtrail"] = rows
            results["runs"] = [r.as_dict() for r in base] + [r.as_dict() for runs in mine.values() for r in runs]

    sweep: list[dict[str, Any]] = []
    if "cardinality" in a.steps:
        w = max(a.workers)
        _say(f"\n[3] identifier cardinality, {a.cardinality_events:,} events, {w} worker(s)")
        for customers in a.cardinalities:
            f = workloads.cloudtrail(work, a.cardinality_events, customers)
            b = run_baseline(f, a.cardinality_events, scratch)
            r = run_auditveil([f], a.cardinality_events, scratch, env, w)
            _say(_line(b))
            _say(_line(r))
            row = report.summarise([r], [b])
            row["customers"] = customers
            row["workload"] = f"ct c={customers:,}"
            sweep.append(row)
        results["cardinality"] = sweep

    vault_rows: list[dict[str, Any]] = []
    if "vault" in a.steps:
        _say(f"\n[4] Vault audit log, {a.vault_events:,} entries (ratio against the CloudTrail baseline's events/s)")
        vf = workloads.vault(work, a.vault_events)
        for w in a.workers:
            r = run_auditveil([vf], a.vault_events, scratch, env, w, workload="vault")
            _say(_line(r))
            vault_rows.append(report.summarise([r], base))
        results["vault"] = vault_rows

    mem_rows: list[dict[str, Any]] = []
    if "memory" in a.steps:
        w = max(a.workers)
        _say(f"\n[5] memory, {a.memory_events:,} CloudTrail events, {w} worker(s)")
        big = workloads.cloudtrail(work, a.memory_events)
        r = run_auditveil([big], a.memory_events, scratch, env, w)
        b = run_baseline(big, a.memory_events, scratch)
        _say(_line(b))
        _say(_line(r))
        mem_rows.append(report.summarise([r], [b]))
        results["memory"] = mem_rows

    if "stream" in a.steps:
        from bench.stream import PRISM, measure_stream

        if not PRISM.exists():
            _say("\n[6] streaming skipped: the Prism runner is not installed (scripts/setup.sh)")
        else:
            _say(f"\n[6] streaming on a local Kafka broker, {a.stream_events:,} events, window {a.stream_window} s")
            stream = measure_stream(work, workloads.cloudtrail(work, a.events), a.stream_events, env,
                                    a.stream_window)
            _say(f"  {stream}")
            results["stream"] = stream

    if "floor" in a.steps:
        _say("\n[7] floor: unavoidable costs on this machine, and the ceiling they leave")
        floor = _floor(results, work, a.events, env, a.workers)
        if floor is None:
            _say(f"  skipped: no CloudTrail results for {a.events:,} events yet (run the cloudtrail step)")
        else:
            for line in describe(floor):
                _say(line)
            results["floor"] = floor

    _say("\nResults (ratio = auditveil events/s ÷ baseline events/s, medians; cpu ratio = the same per CPU-second "
         "of the whole process tree)\n")
    # Steps not run now keep their rows from an earlier invocation in the same work directory.
    rows, sweep = results.get("cloudtrail", []), results.get("cardinality", [])
    _say(report.table(rows + sweep + results.get("vault", []) + results.get("memory", [])))
    if "startup_seconds" in results:
        _say("\nstart-up + shut-down over 100 events: "
             + ", ".join(f"{w} worker(s) {s:.1f} s" for w, s in results["startup_seconds"].items()))
    out = work / "results.json"
    out.write_text(json.dumps(results, indent=2))
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2))
    if a.chart:
        report.chart([r for r in rows if r["workload"] == "cloudtrail"], sweep, Path(a.chart))
        _say(f"chart: {a.chart}")
    _say(f"results: {out}")
    return 0


def _floor(results: dict[str, Any], work: Path, events: int, env: dict[str, str],
           workers: list[int]) -> dict[str, Any] | None:
    runs = [r for r in results.get("runs", []) if r["workload"] == "cloudtrail" and r["events"] == events]
    base = [r["wall_s"] for r in runs if r["what"] == "baseline"]
    distinct = [r["distinct_pairs"] for r in runs if r["what"] == "auditveil" and r["workers"] == 1]
    if not base or not distinct:
        return None
    return measure_floor(workloads.cloudtrail(work, events), events, max(distinct), report.median(base), env,
                         workers)


if __name__ == "__main__":
    sys.exit(main())
