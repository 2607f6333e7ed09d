"""Run SQL with DuckDB over the events dataset (a view named ``events``), locally or on S3.

The dataset is opened through pyarrow (:func:`.dataset.open_events`), so ``s3://`` locations
use the same endpoint, credentials and retries as the pipeline, and DuckDB needs no extension
downloaded at run time. DuckDB pushes column selection and filters (``event_date``,
``source``, …) down into the pyarrow scan, so a query reads only the partitions and columns
it needs.

Analyst SQL is sandboxed: once the view is registered, DuckDB's own file and network access
is switched off (``enable_external_access = false``), so a query cannot read the lookup vault,
a dead letter or any other file, nor write one.

If a compaction removes a file between planning and reading, the query is planned again (a
few times) on a fresh listing: compaction never makes ``auditveil query`` fail or count twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.analyst import dataset
from pipeline.config import StorageSettings
from pipeline.errors import AuditveilError, ConfigError
from pipeline.storage import fs

REPLANS = 4


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    table: Any  # pyarrow.Table


def _connect(events: Any) -> Any:
    import duckdb

    con = duckdb.connect(":memory:")
    con.register("events", events)
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def run_query(out_uri: str, sql: str, storage: StorageSettings | None = None) -> QueryResult:
    """Run ``sql`` against the ``events`` view of the dataset at ``out_uri``."""
    import duckdb

    if not sql.strip():
        raise ConfigError("the query is empty")
    fs.check_reachable(fs.resolve(out_uri, storage), "reach the events bucket")
    loc = dataset.events_location(out_uri, storage)
    last: Exception | None = None
    for _ in range(REPLANS):
        files = dataset.live_files(loc)
        events = dataset.open_events(loc, storage, files)
        con = _connect(events)
        try:
            relation = con.sql(sql)
            if relation is None:  # a statement without a result (e.g. SET)
                return QueryResult([], [], None)
            table = relation.to_arrow_table()
            rows = [tuple(r.values()) for r in table.to_pylist()]
            return QueryResult(list(table.column_names), rows, table)
        except AuditveilError:
            raise
        except (duckdb.Error, OSError) as exc:
            if _files_changed(loc, files):
                last = exc
                continue  # a compaction (or a writer) changed the partition; plan again
            raise ConfigError(f"the query failed: {_first_line(exc)}") from None
        finally:
            con.close()
    raise ConfigError(f"the query failed while the dataset kept changing: {_first_line(last)}") from None


def _files_changed(loc: fs.Location, planned: list[dataset.DataFile]) -> bool:
    return {f.path for f in dataset.live_files(loc)} != {f.path for f in planned}


def _first_line(exc: BaseException | None) -> str:
    """DuckDB's message for a user's SQL mistake: the first line, without file paths."""
    if exc is None:
        return "unknown error"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, OSError):
        return "a data file could not be read"
    return text[:300]


def render(result: QueryResult, fmt: str = "table", max_width: int = 40) -> str:
    """The result as an aligned text table, CSV or JSON lines."""
    if fmt == "csv":
        import csv
        import io

        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(result.columns)
        w.writerows([["" if v is None else v for v in row] for row in result.rows])
        return buf.getvalue()
    if fmt == "json":
        import orjson

        return "".join(
            orjson.dumps(dict(zip(result.columns, row, strict=True)), default=str).decode() + "\n"
            for row in result.rows
        )

    def cell(v: Any) -> str:
        s = "NULL" if v is None else str(v)
        return s if len(s) <= max_width else s[: max_width - 1] + "…"

    cells = [[cell(v) for v in row] for row in result.rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(result.columns)]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(c.ljust(w) for c, w in zip(result.columns, widths, strict=True)), line]
    out += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    out.append(f"({len(result.rows)} row{'s' if len(result.rows) != 1 else ''})")
    return "\n".join(out) + "\n"
