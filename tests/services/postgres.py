"""A real PostgreSQL server (Debian package ``postgresql``) on 127.0.0.1 for the test session.

``postgres_server`` runs ``initdb`` and ``postgres`` from ``/usr/lib/postgresql/<major>/bin``
in a temporary data directory, listening only on loopback on a free port, with SCRAM
password authentication; as root it runs them as the ``postgres`` account (``runuser``),
since PostgreSQL refuses to run as root. The server is stopped (fast shutdown) and its data
directory removed at the end of the session. ``postgres_dsn`` gives each test a fresh,
empty database on that server.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    password: str

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{database}"


def _bindir() -> Path | None:
    base = Path("/usr/lib/postgresql")
    for major in sorted(base.glob("*"), reverse=True) if base.exists() else []:
        if (major / "bin" / "postgres").exists():
            return major / "bin"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    import psycopg

    bindir = _bindir()
    if bindir is None:
        pytest.fail("PostgreSQL is not installed (Debian package postgresql); run scripts/setup.sh")
    root = Path(tempfile.mkdtemp(prefix="auditveil-pg-"))
    data = root / "data"
    password = secrets.token_hex(16)
    pwfile = root / "pw"
    pwfile.write_text(password + "\n")
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        shutil.chown(pwfile, "postgres", "postgres")
    os.chmod(pwfile, 0o600)
    initdb = [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=scram-sha-256",
              f"--pwfile={pwfile}", "--encoding=UTF8", "--no-sync", "--no-instructions"]
    subprocess.run(_as_postgres(initdb), check=True, capture_output=True)
    port = _free_port()
    log = open(root / "server.log", "wb")
    proc = subprocess.Popen(
        _as_postgres([str(bindir / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(port),
                      "-k", str(root), "-c", "fsync=off", "-c", "synchronous_commit=off",
                      "-c", "full_page_writes=off", "-c", "max_connections=100"]),
        stdout=log, stderr=subprocess.STDOUT,
    )
    server = PostgresServer("127.0.0.1", port, "postgres", password)
    deadline = time.monotonic() + 30
    while True:
        try:
            psycopg.connect(server.dsn(), connect_timeout=2).close()
            break
        except psycopg.OperationalError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                tail = (root / "server.log").read_text()[-2000:]
                pytest.fail("the test PostgreSQL server did not start: " + tail)
            time.sleep(0.2)
    try:
        yield server
    finally:
        pidfile = data / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().split("\n", 1)[0])
            os.kill(pid, signal.SIGINT)  # fast shutdown of the postmaster we started
        except (OSError, ValueError):
            proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture()
def postgres_dsn(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database on the session's PostgreSQL server; dropped afterwards."""
    import psycopg

    name = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(postgres_server.dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield postgres_server.dsn(name)
    with psycopg.connect(postgres_server.dsn(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
