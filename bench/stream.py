"""The streaming path on a local Kafka broker: sustained events/s and produce-to-visible delay.

Uses the real single-node KRaft broker of the test suite (``tests/services/kafka.py``, on
127.0.0.1 only) and ``auditveil run --streaming`` on the Prism runner, with the benchmark's
SoftHSM2 token.

* Sustained rate: ``n`` CloudTrail events are produced first, then ``--until-end`` reads them
  all. A second, small run (``n // 10`` events) measures the fixed cost (Prism, workers,
  broker metadata); the sustained rate is the marginal one: (n - n/10) ÷ (t_n - t_small).
* Delay: a long-running pipeline with ``--window W``; every few seconds a marker event stamped
  with the current time is produced, and the time until its row is readable in the events
  Parquet is recorded. The target is ≤ W + 10 s.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

from bench.runs import REPO

PRISM = Path(os.environ.get("AUDITVEIL_TOOLS", "/opt/auditveil/tools")) / "bin" / "prism-2.77.0"


def _command(bootstrap: str, topic: str, out: Path, lookup: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pipeline.cli", "run", "--streaming", "--kafka-bootstrap", bootstrap,
            "--topic", topic, "--out", str(out), "--lookup", str(lookup), "--prism-location", str(PRISM),
            "--no-progress", *extra]


def _lines(path: Path, n: int) -> list[bytes]:
    out: list[bytes] = []
    with open(path, "rb") as fh:
        for line in fh:
            out.append(line.rstrip(b"\n"))
            if len(out) >= n:
                break
    return out


def _visible_ids(out: Path) -> set[str]:
    import pyarrow.parquet as pq

    ids: set[str] = set()
    for f in out.glob("source=*/event_date=*/*.parquet"):
        try:
            ids.update(v for v in pq.read_table(f, columns=["event_id"]).column("event_id").to_pylist() if v)
        except OSError:
            continue  # being replaced right now
    return ids


def _timed_run(cmd: list[str], env: dict[str, str], timeout: float = 1800) -> tuple[float, dict[str, int]]:
    """Seconds taken, and the counts of the run's closing ``streamed:`` line."""
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=str(REPO), capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"streaming run failed (exit {done.returncode}): {done.stderr[-2000:]}")
    seconds = time.perf_counter() - t0
    closing = [line for line in done.stdout.splitlines() if line.startswith("streamed: ")]
    counts = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", closing[-1])} if closing else {}
    return seconds, counts


def measure_stream(work: Path, events_file: Path, n: int, env: dict[str, str], window: int = 10,
                   markers: int = 6) -> dict[str, Any]:
    from tests.services.kafka import KafkaBroker

    run_env = {**os.environ, **env}
    home = work / f"kafka-{uuid.uuid4().hex[:8]}"
    home.mkdir(parents=True)
    broker = KafkaBroker(home)
    broker.start()
    try:
        result: dict[str, Any] = {"events": n, "window_seconds": window}
        timings = {}
        for size in (max(1, n // 10), n):
            topic = broker.create_topic(partitions=2)
            broker.produce(topic, ((i % 2, line) for i, line in enumerate(_lines(events_file, size))))
            out, lookup = work / f"stream-out-{topic}", work / f"stream-lookup-{topic}"
            timings[size], counts = _timed_run(
                _command(broker.bootstrap, topic, out, lookup, "--until-end", "--window", str(window),
                         "--group", f"bench-{topic}"), run_env)
            if size == n:
                result.update(_hsm_use(lookup, n, counts))
        small = max(1, n // 10)
        result["wall_seconds"] = {str(k): round(v, 2) for k, v in timings.items()}
        marginal = timings[n] - timings[small]
        result["sustained_events_per_s"] = round((n - small) / marginal, 1) if marginal > 0 else None
        result["events_per_s_including_startup"] = round(n / timings[n], 1)
        result["delays_s"] = _delays(broker, work, env, window, markers)
        if result["delays_s"]:
            result["delay_median_s"] = round(statistics.median(result["delays_s"]), 2)
            result["delay_max_s"] = round(max(result["delays_s"]), 2)
        return result
    finally:
        try:
            broker.stop()
        finally:
            broker.kill()


def _hsm_use(lookup: Path, events: int, counts: dict[str, int]) -> dict[str, Any]:
    """HSM calls and lookup entries written (the run's own counts), against distinct tokens."""
    from bench.runs import distinct_tokens

    calls, entries = counts.get("hsm_calls", 0), counts.get("lookup_entries", 0)
    distinct = distinct_tokens(lookup)

    def per(x: int) -> float | None:
        return round(x / distinct, 2) if distinct else None

    return {"hsm_calls": calls, "hsm_calls_per_1k_events": round(1000 * calls / events, 1),
            "distinct_pairs": distinct, "hsm_calls_per_distinct": per(calls),
            "lookup_entries": entries, "lookup_entries_per_distinct": per(entries)}


def _marker(event_id: str) -> bytes:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return orjson.dumps({
        "eventVersion": "1.08", "eventID": event_id, "eventTime": now, "eventSource": "kms.amazonaws.com",
        "eventName": "Decrypt", "awsRegion": "eu-central-1", "sourceIPAddress": "203.0.113.9",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDA0000000000000001",
                         "arn": "arn:aws:iam::123456789012:user/bench", "accountId": "123456789012"},
    })


def _delays(broker: Any, work: Path, env: dict[str, str], window: int, markers: int) -> list[float]:
    topic = broker.create_topic(partitions=1)
    out, lookup = work / f"stream-out-{topic}", work / f"stream-lookup-{topic}"
    cmd = _command(broker.bootstrap, topic, out, lookup, "--window", str(window), "--group", f"bench-{topic}",
                   "--start", "earliest")
    log = open(work / f"stream-{topic}.log", "w")
    proc = subprocess.Popen(cmd, env={**os.environ, **env}, cwd=str(REPO), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    delays: list[float] = []
    try:
        broker.produce(topic, [_marker(str(uuid.uuid4()))])  # warm-up: the first window opens
        time.sleep(window + 15)
        for _ in range(markers):
            eid = str(uuid.uuid4())
            t0 = time.monotonic()
            broker.produce(topic, [_marker(eid)])
            deadline = t0 + 4 * window + 60
            while time.monotonic() < deadline and proc.poll() is None:
                if eid in _visible_ids(out):
                    delays.append(round(time.monotonic() - t0, 2))
                    break
                time.sleep(0.25)
            time.sleep(1.0)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 2)  # SIGINT: a clean stop
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait(30)
        log.close()
    return delays
