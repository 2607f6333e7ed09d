"""Progress of a batch run, shown while the workers work.

Workers write their cumulative counts to small files in a private temporary folder; the driver
sums them about twice a second. On a terminal this is a live bar (rich); otherwise one plain
line every ten seconds, suitable for CI and log collectors. Counts only, never content.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any


class ProgressView:
    def __init__(self, progress_dir: str, total_bytes: int, enabled: bool = True) -> None:
        self._dir = progress_dir
        self._total = max(1, total_bytes)
        self._enabled = enabled
        self._tty = sys.stderr.isatty()
        self._last_line = time.monotonic()
        self._bar: Any = None
        self._task: Any = None
        if enabled and self._tty:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn("[bold]pseudonymising"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                TextColumn("{task.fields[events]:>12,} events"), TimeElapsedColumn(), TimeRemainingColumn(),
                transient=True,
            )
            self._task = self._bar.add_task("run", total=self._total, events=0)
            self._bar.start()

    def _read(self) -> tuple[int, int]:
        done_bytes = events = 0
        try:
            names = os.listdir(self._dir)
        except OSError:
            return 0, 0
        for name in names:
            if not name.endswith(".json"):
                continue
            try:
                with open(os.path.join(self._dir, name)) as fh:
                    d = json.load(fh)
            except (OSError, ValueError):
                continue
            done_bytes += int(d.get("bytes", 0))
            events += int(d.get("events", 0))
        return done_bytes, events

    def tick(self) -> None:
        if not self._enabled:
            return
        done, events = self._read()
        if self._bar is not None:
            self._bar.update(self._task, completed=min(done, self._total), events=events)
            return
        now = time.monotonic()
        if now - self._last_line >= 10:
            self._last_line = now
            pct = 100.0 * min(done, self._total) / self._total
            print(f"[auditveil] {pct:5.1f}% of input read, {events:,} events processed", file=sys.stderr)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
