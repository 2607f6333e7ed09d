"""Beam SDK worker pool for a Flink TaskManager, bound to ONE address (loopback by default).

Beam's own ``apache_beam.runners.worker.worker_pool_main`` listens on every interface
(``[::]``). A worker pool starts an SDK harness for whoever asks and runs the pipeline code
that the caller's control endpoint sends, so it must only be reachable by the TaskManager in
the same pod: this wrapper binds it to 127.0.0.1. The TaskManager reaches it as
``--environment_type=EXTERNAL --environment_config=localhost:50000``.

Each SDK harness is a separate ``python`` process (the first ``python`` on ``PATH``: the
image's virtualenv), which holds the HSM session and the storage clients; the Java
TaskManager never sees the HSM PIN or the storage credentials.

Usage: python beam_worker_pool.py [--host 127.0.0.1] [--port 50000]
Prints ``listening on HOST:PORT`` on stdout once ready; stops cleanly on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import Any


def start(host: str, port: int) -> tuple[Any, Any, int]:
    """Start the worker pool gRPC service; returns (server, servicer, bound port)."""
    import grpc
    from apache_beam.portability.api import beam_fn_api_pb2_grpc
    from apache_beam.runners.worker.worker_pool_main import BeamFnExternalWorkerPoolServicer
    from apache_beam.utils import thread_pool_executor

    server = grpc.server(
        thread_pool_executor.shared_unbounded_instance(),
        options=[("grpc.http2.max_pings_without_data", 0), ("grpc.http2.max_ping_strikes", 0)],
    )
    bound = server.add_insecure_port(f"{host}:{port}")
    if not bound:
        raise OSError(f"cannot listen on {host}:{port}")
    servicer = BeamFnExternalWorkerPoolServicer(use_process=True, data_buffer_time_limit_ms=-1)
    beam_fn_api_pb2_grpc.add_BeamFnExternalWorkerPoolServicer_to_server(servicer, server)
    server.start()
    return server, servicer, bound


def stop(server: Any, servicer: Any, grace_seconds: float = 10.0) -> None:
    """Stop accepting work, then stop every SDK harness process this pool started."""
    from apache_beam.runners.worker.worker_pool_main import kill_process_gracefully

    server.stop(grace_seconds).wait()
    for proc in list(servicer._worker_processes.values()):
        kill_process_gracefully(proc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=50000, help="port (default: 50000; 0: any free port)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    server, servicer, bound = start(args.host, args.port)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    print(f"listening on {args.host}:{bound}", flush=True)
    done.wait()
    stop(server, servicer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
