"""Where re-identification state lives: SQLite (default) or PostgreSQL (shared service).

``reid.db`` (``$AUDITVEIL_REID_DB``) is empty for SQLite at
``$AUDITVEIL_STATE_DIR/reid.sqlite3`` (default ``$XDG_DATA_HOME/auditveil`` or
``~/.local/share/auditveil``), a ``sqlite:///path`` URI or a plain path, or a
``postgresql://`` URI (password from the URI's environment, e.g. ``$PGPASSWORD`` or
``~/.pgpass``, never the command line).

Every state change runs in one transaction that first locks what it changes: SQLite takes
the database write lock up front (``BEGIN IMMEDIATE``); PostgreSQL locks the request row and
the audit-log head row (``SELECT … FOR UPDATE``, always in that order), so concurrent
approvals of one request serialise and the hash chain never forks. SQL is written once with
``?`` placeholders; the PostgreSQL adapter turns them into ``%s``.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeline.config import ReidSettings
from pipeline.errors import ConfigError, SinkError

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS custodians (
        name TEXT PRIMARY KEY, public_key_pem TEXT NOT NULL, fingerprint TEXT NOT NULL,
        enrolled_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS requests (
        id TEXT PRIMARY KEY, case_id TEXT NOT NULL, reason TEXT NOT NULL, requester TEXT NOT NULL,
        tokens TEXT NOT NULL, created_at TEXT NOT NULL, expires_at TEXT NOT NULL,
        digest TEXT NOT NULL, status TEXT NOT NULL, quorum INTEGER NOT NULL,
        decided_at TEXT, reveals_used INTEGER NOT NULL DEFAULT 0)""",
    """CREATE TABLE IF NOT EXISTS decisions (
        request_id TEXT NOT NULL REFERENCES requests(id), custodian TEXT NOT NULL,
        decision TEXT NOT NULL, signature TEXT NOT NULL, reason TEXT NOT NULL, at TEXT NOT NULL,
        PRIMARY KEY (request_id, custodian))""",
    """CREATE TABLE IF NOT EXISTS audit_log (
        seq INTEGER PRIMARY KEY, at TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
        request_id TEXT NOT NULL, case_id TEXT NOT NULL, tokens TEXT NOT NULL, detail TEXT NOT NULL,
        prev_hash TEXT NOT NULL, hash TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS audit_head (
        id INTEGER PRIMARY KEY, seq INTEGER NOT NULL, hash TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS api_keys (
        key_id TEXT PRIMARY KEY, secret_hash TEXT NOT NULL, identity TEXT NOT NULL,
        role TEXT NOT NULL, created_at TEXT NOT NULL, revoked_at TEXT)""",
)
GENESIS = "0" * 64
INIT_HEAD = "INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, ?) ON CONFLICT (id) DO NOTHING"


def state_dir() -> Path:
    explicit = os.environ.get("AUDITVEIL_STATE_DIR")
    if explicit:
        return Path(explicit)
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "auditveil"


class Tx:
    """One open transaction: ``execute``, ``one``, ``all``, and ``lock`` (row lock on PostgreSQL)."""

    def __init__(self, cursor: Any, postgres: bool) -> None:
        self._cur = cursor
        self._pg = postgres

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self._pg else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        self._cur.execute(self._sql(sql), tuple(params))
        return int(self._cur.rowcount or 0)

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        self._cur.execute(self._sql(sql), tuple(params))
        row = self._cur.fetchone()
        return tuple(row) if row is not None else None

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self._cur.execute(self._sql(sql), tuple(params))
        return [tuple(r) for r in self._cur.fetchall()]

    def lock(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        """``one`` that also row-locks on PostgreSQL (SQLite already holds the write lock)."""
        return self.one(sql + (" FOR UPDATE" if self._pg else ""), params)


class Database:
    """A connection factory (one connection per thread) with transactional helpers."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.postgres = url.startswith(("postgresql://", "postgres://"))
        self._local = threading.local()
        self._conns: list[Any] = []
        self._conns_lock = threading.Lock()
        if not self.postgres:
            path = url[len("sqlite:///") - 1:] if url.startswith("sqlite:///") else url
            self._path = Path(path)
            try:
                self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                if not self._path.exists():
                    os.close(os.open(self._path, os.O_WRONLY | os.O_CREAT, 0o600))
            except OSError:
                raise ConfigError("the re-identification database cannot be created; check reid.db") from None
        self._init_schema()

    @classmethod
    def from_settings(cls, settings: ReidSettings) -> Database:
        url = settings.db or str(state_dir() / "reid.sqlite3")
        if "://" in url and not url.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ConfigError("reid.db must be empty, a SQLite path or a postgresql:// URI")
        return cls(url)

    def describe(self) -> str:
        """Where the state is, without credentials."""
        return "PostgreSQL" if self.postgres else f"SQLite {self._path}"

    def _connect(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        if self.postgres:
            import psycopg

            try:
                conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
            except psycopg.Error:
                raise SinkError("the re-identification database (PostgreSQL) cannot be reached") from None
        else:
            try:
                conn = sqlite3.connect(self._path, timeout=30, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA foreign_keys=ON")
            except sqlite3.Error:
                raise SinkError("the re-identification database (SQLite) cannot be opened") from None
        self._local.conn = conn
        with self._conns_lock:
            self._conns.append(conn)
        return conn

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Tx]:
        """One transaction; ``write=False`` for reads (SQLite then does not take the write lock)."""
        conn = self._connect()
        if self.postgres:
            import psycopg

            try:
                with conn.transaction(), conn.cursor() as cur:
                    yield Tx(cur, True)
            except psycopg.Error:
                raise SinkError("the re-identification database (PostgreSQL) failed a transaction") from None
            return
        cur = conn.cursor()
        try:
            cur.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            yield Tx(cur, False)
        except BaseException as exc:
            conn.rollback()
            if isinstance(exc, sqlite3.Error):
                raise SinkError("the re-identification database (SQLite) failed a transaction") from None
            raise
        else:
            try:
                conn.commit()
            except sqlite3.Error:
                raise SinkError("the re-identification database (SQLite) failed to commit") from None
        finally:
            cur.close()

    def _init_schema(self) -> None:
        with self.transaction() as tx:
            if self.postgres:
                tx.execute("SELECT pg_advisory_xact_lock(7461726)")  # one initialiser at a time
            for stmt in SCHEMA:
                tx.execute(stmt)
            tx.execute(INIT_HEAD, (GENESIS,))

    def close(self) -> None:
        with self._conns_lock:
            for conn in self._conns:
                try:
                    conn.close()
                except Exception:  # noqa: S110 - closing must not mask the caller's error
                    pass
            self._conns.clear()
        self._local = threading.local()
