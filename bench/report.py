"""Summaries of measured runs: medians, ratios against the baseline, the printed table, the chart."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.runs import RunResult

MIB = 1024 * 1024


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


def summarise(runs: Sequence[RunResult], baseline: Sequence[RunResult]) -> dict[str, Any]:
    """Medians over repetitions of one configuration, and its ratios against ``baseline``."""
    base_eps = median([b.events_per_s for b in baseline])
    base_cpu = median([b.events_per_cpu_s for b in baseline])
    eps = median([r.events_per_s for r in runs])
    cpu = median([r.events_per_cpu_s for r in runs])
    first = runs[0]
    calls = median([r.hsm_calls for r in runs])
    distinct = median([r.distinct_pairs for r in runs])
    return {
        "workload": first.workload,
        "workers": first.workers,
        "events": first.events,
        "repetitions": len(runs),
        "events_per_s": round(eps, 1),
        "baseline_events_per_s": round(base_eps, 1),
        "ratio": round(eps / base_eps, 3) if base_eps else None,
        "cpu_ratio": round(cpu / base_cpu, 3) if base_cpu else None,
        "cpu_us_per_event": round(1e6 / cpu, 1) if cpu else None,
        "baseline_cpu_us_per_event": round(1e6 / base_cpu, 1) if base_cpu else None,
        "hsm_calls_per_1k_events": round(1000 * calls / first.events, 1),
        "hsm_calls_per_distinct_pair": round(calls / distinct, 3) if distinct else None,
        "distinct_pairs": int(distinct),
        "cache_hit_rate": round(median([r.cache_hit_rate for r in runs]), 4),
        "peak_rss_mib": round(max(r.peak_rss_bytes for r in runs) / MIB, 1),
        "out_bytes_per_event": round(median([r.out_bytes for r in runs]) / first.events, 1),
        "lookup_bytes_per_event": round(median([r.lookup_bytes for r in runs]) / first.events, 1),
        "baseline_out_bytes_per_event": round(median([b.out_bytes for b in baseline]) / first.events, 1)
        if baseline else None,
        "load_avg": round(median([r.load_avg for r in runs]), 1),
    }


def table(rows: Sequence[dict[str, Any]]) -> str:
    head = ("workload", "events", "workers", "ratio", "cpu ratio", "ev/s", "base ev/s", "µs/ev cpu",
            "HSM/1k ev", "HSM/distinct", "hit rate", "peak RSS MiB", "B/event", "lookup B/ev", "load")
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    for r in rows:
        lines.append(" | ".join(str(x) for x in (
            r["workload"], f"{r['events']:,}", r["workers"], _fmt(r["ratio"]), _fmt(r["cpu_ratio"]),
            f"{r['events_per_s']:,.0f}", f"{r['baseline_events_per_s']:,.0f}", r["cpu_us_per_event"],
            r["hsm_calls_per_1k_events"], _fmt(r["hsm_calls_per_distinct_pair"]), r["cache_hit_rate"],
            r["peak_rss_mib"], r["out_bytes_per_event"], r["lookup_bytes_per_event"], r["load_avg"],
        )))
    return "\n".join("| " + line + " |" for line in lines)


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def chart(by_workers: Sequence[dict[str, Any]], by_cardinality: Sequence[dict[str, Any]], path: Path) -> None:
    """Throughput ratio against worker count and against identifier cardinality (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    if by_workers:
        xs = [r["workers"] for r in by_workers]
        a.plot(xs, [r["ratio"] for r in by_workers], "o-", label="wall-clock ratio")
        a.plot(xs, [r["cpu_ratio"] for r in by_workers], "s--", label="CPU-efficiency ratio")
        a.set_xticks(xs)
    a.axhline(1.0, color="grey", lw=0.8)
    a.axhline(2.0, color="grey", lw=0.8, ls=":")
    a.set_xlabel("worker processes")
    a.set_ylabel("auditveil ÷ baseline (events/s)")
    a.set_title("CloudTrail: throughput vs workers")
    a.legend()
    if by_cardinality:
        xs = [r["customers"] for r in by_cardinality]
        b.semilogx(xs, [r["ratio"] for r in by_cardinality], "o-", label="wall-clock ratio")
        b.semilogx(xs, [r["cpu_ratio"] for r in by_cardinality], "s--", label="CPU-efficiency ratio")
        ax2 = b.twinx()
        ax2.semilogx(xs, [r["distinct_pairs"] / r["events"] * 1000 for r in by_cardinality], "^:", color="tab:red",
                     label="distinct pairs per 1k events")
        ax2.set_ylabel("distinct (domain, value) per 1k events", color="tab:red")
        b.legend(loc="upper right")
    b.axhline(1.0, color="grey", lw=0.8)
    b.set_xlabel("distinct encryption-context values in the input (generator --customers)")
    b.set_title(f"throughput vs identifier cardinality ({by_cardinality[0]['workers'] if by_cardinality else '?'}"
                " workers)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
