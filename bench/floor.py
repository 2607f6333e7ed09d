"""The floor: what the brief's fixed decisions cost before any policy work, against the baseline.

auditveil must run on Apache Beam and compute every token in the HSM; the baseline does neither.
This step measures three costs that no implementation of auditveil can avoid on this machine,
each in a fresh interpreter:

* ``import apache_beam`` (the driver needs it before it can build a pipeline);
* one HMAC in the HSM (SoftHSM2 over PKCS#11), times the distinct (domain, value) pairs of the
  CloudTrail run: one call each is the best any cache can do;
* decoding every input line with ``orjson`` and nothing else (no policy, no output).

From these and the baseline's own wall time on the same input it prints the *ceiling*: the
highest ratio auditveil could reach if everything else it does (the policy, `extra`, lookup
entries, Parquet, Beam's execution, worker start-up) took no time at all. With ``w`` workers the
decode and the HSM calls are assumed to split perfectly over the workers and to start at once.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.runs import REPO

_IMPORT_BEAM = "import time; t = time.perf_counter(); import apache_beam; print(time.perf_counter() - t)"

_DECODE = """
import sys, time, orjson
t = time.perf_counter()
with open(sys.argv[1], "rb") as f:
    for line in f:
        orjson.loads(line)
print(time.perf_counter() - t)
"""

_HSM = """
import sys, time
from pipeline.config import load_settings
from pipeline.custody.hsm import HsmSession
s = load_settings(None)
h = HsmSession(s.pkcs11)
v = s.pkcs11.key_version
n = int(sys.argv[1])
values = [b"bench-floor-%d" % i for i in range(n)]
h.hmac_sha256(v, b"warm-up")
t = time.perf_counter()
for x in values:
    h.hmac_sha256(v, x)
print((time.perf_counter() - t) / n)
h.close()
"""


def _seconds(code: str, *args: str, env: dict[str, str] | None = None, reps: int = 3) -> float:
    """Median of what ``code`` prints (seconds), each repetition in a fresh interpreter."""
    values = []
    for _ in range(reps):
        done = subprocess.run([sys.executable, "-c", code, *args], env={**os.environ, **(env or {})},
                              cwd=str(REPO), capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"floor measurement failed (exit {done.returncode}): {done.stderr[-2000:]}")
        values.append(float(done.stdout.strip().splitlines()[-1]))
    return statistics.median(values)


def measure_floor(events_file: Path, events: int, distinct_pairs: int, baseline_wall_s: float,
                  env: dict[str, str], workers: list[int]) -> dict[str, Any]:
    beam_import = _seconds(_IMPORT_BEAM)
    decode = _seconds(_DECODE, str(events_file))
    per_call = _seconds(_HSM, "20000", env=env)
    hsm = per_call * distinct_pairs
    result: dict[str, Any] = {
        "events": events,
        "baseline_wall_s": round(baseline_wall_s, 3),
        "import_apache_beam_s": round(beam_import, 3),
        "decode_only_s": round(decode, 3),
        "hsm_us_per_call": round(per_call * 1e6, 2),
        "distinct_pairs": distinct_pairs,
        "hsm_s": round(hsm, 3),
        "ceiling_ratio": {},
    }
    for w in sorted(set(workers)):
        floor_s = beam_import + (decode + hsm) / max(1, w)
        result["ceiling_ratio"][str(w)] = round(baseline_wall_s / floor_s, 2)
    return result


def describe(f: dict[str, Any]) -> list[str]:
    hsm = f"HSM, {f['hsm_us_per_call']:.1f} µs/call x {f['distinct_pairs']:,} distinct pairs"
    rows = [("baseline, its whole run", f["baseline_wall_s"]),
            ("import apache_beam", f["import_apache_beam_s"]),
            (hsm, f["hsm_s"]),
            ("orjson decode of every line, nothing else", f["decode_only_s"])]
    lines = [f"  {label:<48} {seconds:6.2f} s" for label, seconds in rows]
    for w, ratio in f["ceiling_ratio"].items():
        lines.append(f"  ceiling with {w} worker(s), if all other work were free: {ratio:.2f}x the baseline")
    return lines
