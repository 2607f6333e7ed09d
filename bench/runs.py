"""One measured run of the baseline or of ``auditveil run``, and what it produced."""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.measure import Measured, run_measured

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "bench" / "reference"


@dataclass
class RunResult:
    what: str  # "baseline" | "auditveil"
    workload: str
    workers: int
    events: int
    wall_s: float
    cpu_s: float
    peak_rss_bytes: int
    load_avg: float
    out_bytes: int
    lookup_bytes: int = 0
    hsm_calls: int = 0
    cache_hit_rate: float = 0.0
    distinct_pairs: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def events_per_s(self) -> float:
        return self.events / self.wall_s if self.wall_s else 0.0

    @property
    def events_per_cpu_s(self) -> float:
        return self.events / self.cpu_s if self.cpu_s else 0.0

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["events_per_s"] = round(self.events_per_s, 1)
        d["events_per_cpu_s"] = round(self.events_per_cpu_s, 1)
        return d


def _tree_bytes(path: Path, suffix: str = "") -> int:
    if not path.exists():
        return 0
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and p.name.endswith(suffix))


def _check(m: Measured, what: str) -> None:
    if m.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {m.returncode}): {m.stderr[-2000:]}")


def run_baseline(events_file: Path, events: int, scratch: Path, workload: str = "cloudtrail") -> RunResult:
    out = scratch / "baseline.parquet"
    out.unlink(missing_ok=True)
    m = run_measured([sys.executable, str(REFERENCE / "baseline.py"), str(events_file), str(out)])
    _check(m, "baseline")
    size = _tree_bytes(out)
    out.unlink(missing_ok=True)
    return RunResult("baseline", workload, 1, events, m.wall_s, m.cpu_s, m.peak_rss_bytes, m.load_avg, size)


def distinct_tokens(lookup: Path) -> int:
    """Distinct tokens in the lookup vault = distinct (domain label, value) pairs tokenised."""
    import pyarrow.parquet as pq

    tokens: set[str] = set()
    for f in (lookup / "entries").glob("*.parquet"):
        tokens.update(pq.read_table(f, columns=["token"]).column("token").to_pylist())
    return len(tokens)


def run_auditveil(inputs: list[Path], events: int, scratch: Path, env: dict[str, str], workers: int,
                  workload: str = "cloudtrail", extra_args: tuple[str, ...] = (), code: str = "") -> RunResult:
    """``auditveil run`` over ``inputs``; with ``code``, the ``pipeline`` package of that source
    tree (another checkout, e.g. ``git archive <rev> pipeline schemas``) runs instead."""
    out, lookup, summary = scratch / "out", scratch / "lookup", scratch / "summary.json"
    for p in (out, lookup):
        shutil.rmtree(p, ignore_errors=True)
    summary.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "pipeline.cli", "run", "--out", str(out), "--lookup", str(lookup),
           "--workers", str(workers), "--no-progress", "--summary-json", str(summary), *extra_args]
    for i in inputs:
        cmd += ["--input", str(i)]
    run_env = {**os.environ, **env}
    if code:
        run_env["PYTHONPATH"] = os.pathsep.join(filter(None, (code, run_env.get("PYTHONPATH", ""))))
    m = run_measured(cmd, env=run_env, cwd=code or str(REPO))
    _check(m, "auditveil run")
    s = json.loads(summary.read_text())
    seen = sum(s["events_in"].values())
    if seen != events:
        raise RuntimeError(f"auditveil read {seen} events, expected {events}")
    result = RunResult(
        f"auditveil@{Path(code).name}" if code else "auditveil", workload, workers, events, m.wall_s, m.cpu_s,
        m.peak_rss_bytes, m.load_avg,
        out_bytes=_tree_bytes(out, ".parquet"), lookup_bytes=_tree_bytes(lookup),
        hsm_calls=int(s["hsm_calls"]), cache_hit_rate=float(s["cache_hit_rate"] or 0.0),
        distinct_pairs=distinct_tokens(lookup),
        extra={"pipeline_seconds": s["seconds"], "dead_letters": s["dead_letters"],
               "rows_written": s["rows_written"], "files_written": s["files_written"]},
    )
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(lookup, ignore_errors=True)
    return result
