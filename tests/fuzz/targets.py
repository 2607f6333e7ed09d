"""Fuzz targets: bytes in, invariants checked, an exception is a finding.

Each target takes the raw bytes libFuzzer (via atheris) hands it. They are plain functions, so
the short CI budget (``test_fuzz_budget.py``), the longer run (``scripts/fuzz``) and a
reproduction of a crash file (``python -m tests.fuzz.run TARGET crash-…``) all call the same
code. Invariants:

* ``decode``: never raises; yields only Record / Rejected / Skipped; positions and error
  classes carry no input; every Record payload can be re-encoded (the dead-letter path needs it).
* ``normalise``: both per-source normalisers and the leftover walk take any decoded object.
* ``pipeline``: decode → normalise → sanitise (shipped policies, in-memory test key) never raises;
  each record becomes one row or one dead letter; no output string (Parquet-decoded, as the
  leak scanner reads it) contains anything shaped like an identifier; counter names are fixed.
"""

from __future__ import annotations

import gzip
import io
import os
from collections.abc import Callable
from typing import Any

import orjson

from pipeline.sources.decode import Limits, decode
from pipeline.sources.records import Record, Rejected, Skipped

LIMITS = Limits(max_record_bytes=64 * 1024, max_decompressed_bytes=256 * 1024, max_depth=64)
ERROR_CLASSES = frozenset(("json", "gzip", "shape", "unknown_format", "too_large", "too_deep"))
POSITION = "input #1"


def _decoded(data: bytes, fmt: str = "auto") -> list[Record | Rejected | Skipped]:
    from pipeline.scan.patterns import find_identifiers

    items = list(decode(data, fmt, POSITION, LIMITS))
    for item in items:
        if not isinstance(item, Record | Rejected | Skipped):
            raise AssertionError("decode yielded something else")
        if not item.position.startswith(POSITION) or find_identifiers(item.position):
            raise AssertionError("a position carries input")
        if isinstance(item, Rejected) and item.error_class not in ERROR_CLASSES:
            raise AssertionError("unknown error class")
        if isinstance(item, Record):
            orjson.dumps(item.payload)
    return items


def fuzz_decode(data: bytes) -> None:
    fmt = ("auto", "cloudtrail", "vault")[data[0] % 3] if data else "auto"
    _decoded(data, fmt)
    if len(data) < 4096:
        _decoded(gzip.compress(data, compresslevel=1), fmt)


def fuzz_normalise(data: bytes) -> None:
    from pipeline.normalise import NORMALISERS, leftovers

    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return
    objs = value if isinstance(value, list) else [value]
    for obj in objs:
        if not isinstance(obj, dict):
            continue
        for normalise in NORMALISERS.values():
            try:
                cols, consumed = normalise(obj)
            except RecursionError:
                continue  # only beyond decode's depth limit, which the pipeline rejects first
            for _ in leftovers(obj, consumed):
                pass
            if not isinstance(cols, dict):
                raise AssertionError("a normaliser returned no columns")


_SANITISER: Any = None


def _sanitiser() -> Any:
    global _SANITISER
    if _SANITISER is None:
        from pipeline.sanitise import Sanitiser, load_policies
        from pipeline.tokenise import LocalMacBackend, Tokeniser
        from pipeline.tokenise.backends import LOCAL_KEY_OPT_IN

        if os.environ.get("AUDITVEIL_INSECURE_LOCAL_KEY") != LOCAL_KEY_OPT_IN:
            raise SystemExit("the pipeline fuzz target needs AUDITVEIL_INSECURE_LOCAL_KEY (test key only)")
        _SANITISER = Sanitiser(load_policies(), Tokeniser(LocalMacBackend(b"fuzz-target-test-only-key-32-bytes"),
                                                          cache_size=50_000))
    return _SANITISER


def fuzz_pipeline(data: bytes) -> None:
    import pyarrow.parquet as pq

    from pipeline.scan.patterns import find_identifiers
    from pipeline.scan.scanner import parquet_strings

    records = [i for i in _decoded(data) if isinstance(i, Record)]
    if not records:
        return
    sanitiser = _sanitiser()
    batch = sanitiser.sanitise(records)
    sanitiser._tok.drain()
    if batch.table.num_rows + len(batch.rejected) != len(records):
        raise AssertionError("a record was lost")
    for name in batch.counts:
        if find_identifiers(name) or len(name) > 64:
            raise AssertionError("a counter name carries input")
    buf = io.BytesIO()
    pq.write_table(batch.table, buf)
    for column, text in parquet_strings(buf.getvalue()):
        if find_identifiers(text):
            raise AssertionError(f"identifier-shaped output in column {column}")


TARGETS: dict[str, Callable[[bytes], None]] = {
    "decode": fuzz_decode,
    "normalise": fuzz_normalise,
    "pipeline": fuzz_pipeline,
}
