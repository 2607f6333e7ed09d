"""A real S3-compatible server on loopback for the storage tests, and a fault-injecting proxy.

The server is MinIO built by ``scripts/setup.d/30-s3.sh`` (``$AUDITVEIL_TOOLS/bin/minio``);
without it, moto's standalone server from the virtualenv (``moto_server``). It listens on
127.0.0.1 on a free port with a temporary data directory, and is stopped at the end of the
session.

:class:`FaultProxy` sits between a client and the server when a test asks for it
(``s3.storage(via_proxy=True)``): it forwards bytes untouched until told to fail, then, for a
while, answers every request with ``503 Service Unavailable`` (or resets connections, or cuts
an upload after some bytes), which is what a struggling object store does.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import Secret, StorageSettings

REGION = "eu-central-1"
ACCESS_KEY = "auditveil-test"
SECRET_KEY = "auditveil-test-secret-0123456789"
TOOLS = Path(os.environ.get("AUDITVEIL_TOOLS", "/opt/auditveil/tools"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FaultProxy:
    """A loopback TCP proxy that can make the S3 server look down for a while."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = int(self.sock.getsockname()[1])
        self.mode = "pass"  # pass | 503 | reset | cut
        self.until = 0.0
        self.cut_after = 0
        self.failures = 0  # requests answered with a failure
        self._lock = threading.Lock()
        self._live: set[socket.socket] = set()
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail_for(self, seconds: float, mode: str = "503") -> None:
        """Fail every request for ``seconds`` from now (``503``, ``reset``)."""
        with self._lock:
            self.mode, self.until, self.failures = mode, time.monotonic() + seconds, 0
        self._drop_live()

    def cut_uploads_after(self, nbytes: int, seconds: float = 60.0) -> None:
        """Forward requests but drop each connection after ``nbytes`` from the client."""
        with self._lock:
            self.mode, self.until = "cut", time.monotonic() + seconds
            self.cut_after, self.failures = nbytes, 0
        self._drop_live()

    def heal(self) -> None:
        with self._lock:
            self.mode, self.until = "pass", 0.0

    def _current_mode(self) -> str:
        with self._lock:
            if self.mode != "pass" and time.monotonic() >= self.until:
                self.mode = "pass"
            return self.mode

    def _drop_live(self) -> None:
        with self._lock:
            live, self._live = list(self._live), set()
        for s in live:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self._stop = True
        self._drop_live()
        self.sock.close()

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        mode = self._current_mode()
        if mode in ("503", "reset"):
            with self._lock:
                self.failures += 1
            if mode == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                conn.close()
                return
            self._answer_503(conn)
            return
        try:
            up = socket.create_connection(self.upstream, timeout=10)
        except OSError:
            conn.close()
            return
        up.settimeout(None)
        with self._lock:
            self._live.update((conn, up))
        limit = self.cut_after if mode == "cut" else -1
        t = threading.Thread(target=self._pump, args=(up, conn, -1), daemon=True)
        t.start()
        self._pump(conn, up, limit)
        t.join(timeout=30)
        with self._lock:
            self._live.discard(conn)
            self._live.discard(up)

    def _pump(self, src: socket.socket, dst: socket.socket, limit: int) -> None:
        sent = 0
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if limit >= 0 and sent + len(data) > limit:
                    dst.sendall(data[: max(0, limit - sent)])
                    with self._lock:
                        self.failures += 1
                    break
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    @staticmethod
    def _answer_503(conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 65536:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                head += chunk
            headers = head.split(b"\r\n\r\n", 1)[0].lower()
            if b"expect: 100-continue" not in headers:
                length = 0
                for line in headers.split(b"\r\n"):
                    if line.startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1].strip() or 0)
                got = len(head.split(b"\r\n\r\n", 1)[1]) if b"\r\n\r\n" in head else 0
                while got < length:
                    chunk = conn.recv(min(65536, length - got))
                    if not chunk:
                        break
                    got += len(chunk)
            body = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>ServiceUnavailable</Code>'
                    b"<Message>Please reduce your request rate.</Message></Error>")
            head_out = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\n"
                        b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n")
            conn.sendall(head_out + body)
        except OSError:
            pass
        finally:
            conn.close()


@dataclass
class S3Server:
    """A running S3-compatible server: endpoint, credentials, buckets, and a fault proxy."""

    kind: str  # minio | moto
    port: int
    proc: subprocess.Popen[bytes]
    region: str = REGION
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    _proxy: FaultProxy | None = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def proxy(self) -> FaultProxy:
        if self._proxy is None:
            self._proxy = FaultProxy(self.port)
        return self._proxy

    def storage(self, via_proxy: bool = False, **overrides: Any) -> StorageSettings:
        values: dict[str, Any] = {
            "s3_endpoint": self.proxy.endpoint if via_proxy else self.endpoint,
            "s3_region": self.region, "s3_access_key": self.access_key,
            "s3_secret_key": Secret(self.secret_key), "s3_path_style": True,
            "s3_retry_seconds": 20, "s3_timeout_seconds": 10,
        }
        values.update(overrides)
        return StorageSettings(**values)

    def env(self, via_proxy: bool = False) -> dict[str, str]:
        """Environment variables that point the ``auditveil`` CLI at this server."""
        return {
            "AUDITVEIL_STORAGE_S3_ENDPOINT": self.proxy.endpoint if via_proxy else self.endpoint,
            "AUDITVEIL_STORAGE_S3_REGION": self.region,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AUDITVEIL_STORAGE_S3_RETRY_SECONDS": "20",
        }

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint, region_name=self.region,
            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
            config=Config(s3={"addressing_style": "path"}, retries={"mode": "standard", "max_attempts": 3}),
        )

    def make_bucket(self, prefix: str = "b") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(
            Bucket=name, CreateBucketConfiguration={"LocationConstraint": self.region})
        return name

    def stop(self) -> None:
        if self._proxy is not None:
            self._proxy.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def _minio_binary() -> str | None:
    if os.environ.get("AUDITVEIL_S3_SERVER", "") == "moto":
        return None
    path = TOOLS / "bin" / "minio"
    return str(path) if path.exists() else None


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the S3 test server exited during start-up")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 - loopback only
                if resp.status < 500:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the S3 test server did not become healthy")


def start_server(data_dir: Path) -> S3Server:
    port = free_port()
    log = open(data_dir / "server.log", "wb")  # kept open for the server's lifetime
    minio = _minio_binary()
    if minio:
        env = {
            "PATH": os.environ.get("PATH", ""), "HOME": str(data_dir),
            "MINIO_ROOT_USER": ACCESS_KEY, "MINIO_ROOT_PASSWORD": SECRET_KEY,
            "MINIO_SITE_REGION": REGION, "MINIO_UPDATE": "off", "MINIO_BROWSER": "off",
            "MINIO_CALLHOME_ENABLE": "off", "MINIO_API_REQUESTS_DEADLINE": "30s",
        }
        proc = subprocess.Popen(
            [minio, "server", str(data_dir / "data"), "--address", f"127.0.0.1:{port}", "--quiet"],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )
        server = S3Server("minio", port, proc)
        _wait_healthy(f"{server.endpoint}/minio/health/live", proc)
        return server
    moto = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or "moto_server"
    env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY)
    proc = subprocess.Popen([moto, "-H", "127.0.0.1", "-p", str(port)], stdout=log,
                            stderr=subprocess.STDOUT, env=env)
    server = S3Server("moto", port, proc)
    _wait_healthy(f"{server.endpoint}/moto-api/", proc)
    return server


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A real S3-compatible server on loopback for the whole session."""
    server = start_server(tmp_path_factory.mktemp("s3server"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def s3_proxy(s3: S3Server) -> Iterator[FaultProxy]:
    """The fault proxy in front of the session's server, healed after the test."""
    proxy = s3.proxy
    proxy.heal()
    yield proxy
    proxy.heal()
