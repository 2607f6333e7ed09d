"""Helpers for the streaming tests: run ``auditveil run --streaming`` and read what it wrote."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq

from tests.stream.events import output_id

ROOT = Path(__file__).resolve().parents[2]
PRISM = Path(os.environ.get("AUDITVEIL_TOOLS", "/opt/auditveil/tools")) / "bin" / "prism-2.77.0"


def stream_command(bootstrap: str, topics: Sequence[str], out: Path, lookup: Path, *extra: str) -> list[str]:
    cmd = [sys.executable, "-m", "pipeline.cli", "-v", "run", "--streaming", "--kafka-bootstrap", bootstrap,
           "--out", str(out), "--lookup", str(lookup), "--prism-location", str(PRISM)]
    for t in topics:
        cmd += ["--topic", t]
    return cmd + list(extra)


def run_stream(cmd: list[str], env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


class StreamProcess:
    """The streaming CLI in the background, in its own process group (Prism is its child)."""

    def __init__(self, cmd: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "w")
        self.proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True, text=True)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole group: the pipeline and its Prism runner, as a crash would."""
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)
        self._log.close()

    def stop(self, timeout: float = 30) -> int:
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(30)
        else:
            # Prism may outlive a crashed parent; never leave it running.
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._log.close()
        return int(self.proc.returncode)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


def wait_for(condition: Callable[[], bool], timeout: float, what: str, step: float = 0.5,
             proc: StreamProcess | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if proc is not None and not proc.alive():
            raise AssertionError(f"the pipeline exited while waiting for {what}:\n{proc.output()[-4000:]}")
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def event_files(out: Path) -> list[Path]:
    return sorted(p for p in out.glob("source=*/event_date=*/*.parquet"))


def output_ids(out: Path) -> Counter[str]:
    """How many times each generator event id appears in the events Parquet."""
    files = event_files(out)
    if not files:
        return Counter()
    table = ds.dataset([str(f) for f in files], format="parquet").to_table(columns=["event_id"])
    return Counter(output_id(v) for v in table.column("event_id").to_pylist() if v is not None)


def dead_letter_rows(out: Path) -> int:
    return sum(pq.read_metadata(p).num_rows for p in (out / "_dead_letters").glob("*.parquet"))


def all_output_bytes(*locations: Path) -> bytes:
    return b"".join(p.read_bytes() for loc in locations for p in sorted(loc.rglob("*")) if p.is_file())
