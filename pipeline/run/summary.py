"""The run summary: what went in, what came out, what the HSM did — counts only."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from pipeline.sources.records import SOURCE_KINDS


@dataclass(frozen=True)
class RunSummary:
    counters: Mapping[str, int]
    seconds: float
    workers: int
    out_uri: str
    lookup_uri: str
    digests_skipped: int
    files_planned: int
    already_processed: int = 0

    def get(self, name: str) -> int:
        return int(self.counters.get(name, 0))

    @property
    def events_in(self) -> int:
        return sum(self.get(f"events_in.{k}") for k in SOURCE_KINDS)

    @property
    def dead_letters(self) -> dict[str, int]:
        return {k.split(".", 1)[1]: v for k, v in sorted(self.counters.items()) if k.startswith("dead_letters.")}

    def as_dict(self) -> dict[str, Any]:
        hits, calls = self.get("cache_hits"), self.get("hsm_calls")
        return {
            "finished_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "seconds": round(self.seconds, 3),
            "workers": self.workers,
            "events_per_second": round(self.events_in / self.seconds, 1) if self.seconds else None,
            "events_in": {k: self.get(f"events_in.{k}") for k in SOURCE_KINDS},
            "events_out": {k: self.get(f"events_out.{k}") for k in SOURCE_KINDS},
            "tokens_minted": self.get("tokens_minted"),
            "lookup_entries": self.get("lookup_entries"),
            "hsm_calls": calls,
            "cache_hit_rate": round(hits / (hits + calls), 4) if hits + calls else None,
            "dropped_fields": self.get("dropped_fields"),
            "kept_values_tokenised": self.get("kept_values_tokenised"),
            "dead_letters": self.dead_letters,
            "digests_skipped": self.digests_skipped + self.get("skipped.digest"),
            "notifications_skipped": self.get("skipped.notification"),
            "files_planned": self.files_planned,
            "already_processed": self.already_processed,
            "files_written": self.get("files_written"),
            "rows_written": self.get("rows_written"),
            "bytes_written": self.get("bytes_written"),
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.as_dict(), option=orjson.OPT_INDENT_2)

    def render(self) -> str:
        d = self.as_dict()
        lines = [
            "auditveil run summary",
            f"  time               {d['seconds']:.1f} s on {self.workers} worker(s)"
            + (f", {d['events_per_second']:,.0f} events/s" if d["events_per_second"] else ""),
        ]
        for k in SOURCE_KINDS:
            if d["events_in"][k] or d["events_out"][k]:
                lines.append(f"  {k:<18} {d['events_in'][k]:,} in, {d['events_out'][k]:,} out")
        rate = f"{100 * d['cache_hit_rate']:.1f}%" if d["cache_hit_rate"] is not None else "n/a"
        lines += [
            f"  tokens minted      {d['tokens_minted']:,} (lookup entries sealed: {d['lookup_entries']:,})",
            f"  HSM calls          {d['hsm_calls']:,} (cache hit rate {rate})",
            f"  dropped fields     {d['dropped_fields']:,} (default deny)"
            + (f"; {d['kept_values_tokenised']:,} kept values tokenised by the safety net"
               if d["kept_values_tokenised"] else ""),
            f"  dead letters       {sum(d['dead_letters'].values()):,}"
            + (" (" + ", ".join(f"{k}: {v}" for k, v in d["dead_letters"].items()) + ")" if d["dead_letters"] else ""),
            f"  skipped            {d['digests_skipped']:,} digest file(s), "
            f"{d['notifications_skipped']:,} notification(s)"
            + (f", {d['already_processed']:,} object(s) already processed" if d["already_processed"] else ""),
            f"  written            {d['files_written']:,} Parquet file(s), {d['rows_written']:,} rows, "
            f"{d['bytes_written']:,} bytes",
            f"  events             {self.out_uri}",
            f"  lookup vault       {self.lookup_uri} (sealed for the custodians)",
        ]
        if d["dead_letters"]:
            lines.append(f"  dead letters at    {self.out_uri.rstrip('/')}/_dead_letters (sealed)")
        return "\n".join(lines)
