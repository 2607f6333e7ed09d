"""The CI fuzz budget: each atheris target runs a few seconds from the committed corpus.

A crash (an uncaught exception, i.e. a broken invariant) fails the test and leaves the input
in the test's temporary directory; reproduce it with ``python -m tests.fuzz.run TARGET FILE``.
``AUDITVEIL_FUZZ_SECONDS`` scales the budget (default: decode 15 s, normalise 8 s, pipeline 25 s);
``scripts/fuzz`` runs the long version.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.tokenise.backends import LOCAL_KEY_OPT_IN
from tests.fuzz.targets import TARGETS

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).resolve().parent / "corpus"
BUDGET = {"decode": 15, "normalise": 8, "pipeline": 25}


def _seeds() -> list[Path]:
    return sorted(p for p in CORPUS.iterdir() if p.is_file())


def test_corpus_is_committed_and_small() -> None:
    seeds = _seeds()
    assert len(seeds) >= 30
    assert sum(p.stat().st_size for p in seeds) < 256 * 1024


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_every_seed_passes_every_target(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Replay in-process: the cheapest regression check, and it proves the seeds are valid."""
    monkeypatch.setenv("AUDITVEIL_INSECURE_LOCAL_KEY", LOCAL_KEY_OPT_IN)
    for seed in _seeds():
        TARGETS[name](seed.read_bytes())


@pytest.mark.parametrize("name", sorted(BUDGET))
def test_fuzz_budget(name: str, tmp_path: Path) -> None:
    scale = float(os.environ.get("AUDITVEIL_FUZZ_SECONDS", "0") or 0)
    seconds = max(1, int(scale)) if scale else BUDGET[name]
    scratch = tmp_path / "corpus"
    scratch.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITVEIL_")}
    if name == "pipeline":
        env["AUDITVEIL_INSECURE_LOCAL_KEY"] = LOCAL_KEY_OPT_IN  # the in-memory test key, this process only
    env["AUDITVEIL_FUZZ_WATCHDOG"] = "20"  # per input; see tests/fuzz/run.py
    env["AUDITVEIL_FUZZ_CURRENT"] = str(tmp_path / "current-input")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fuzz.run", name, str(scratch), str(CORPUS),
         f"-max_total_time={seconds}", f"-artifact_prefix={tmp_path}/", "-rss_limit_mb=1536", "-timeout=20",
         "-max_len=65536"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        _out, err = proc.communicate(timeout=seconds + 180)
    except subprocess.TimeoutExpired:
        proc.kill()  # our own child, by its id
        _out, err = proc.communicate()
        pytest.fail(f"fuzz target {name} hung (libFuzzer's 20 s unit timeout did not fire)\n"
                    + "\n".join(line for line in err.splitlines()[-40:] if "Instrumenting" not in line))
    done = subprocess.CompletedProcess(proc.args, proc.returncode, "", err)
    runs = [line for line in done.stderr.splitlines() if line.startswith("auditveil-fuzz: done, ")]
    assert done.returncode == 0, f"fuzz target {name} found a failure; input in {tmp_path}\n" + "\n".join(
        line for line in done.stderr.splitlines()[-40:] if "Instrumenting" not in line)
    assert runs and int(runs[0].split()[2]) > 100, "the fuzzer did not actually run"
