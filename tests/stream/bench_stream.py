"""Streaming benchmark (not a test): sustained events/s and produce-to-visible-Parquet delay.

    /opt/auditveil/venv/bin/python -m tests.stream.bench_stream [EVENTS] [PARTITIONS] [DISCOVERY_SECONDS]

Starts a loopback Kafka broker and a SoftHSM2 token in a temporary folder, runs
``auditveil run --streaming`` (Prism, unbounded), produces EVENTS events while it runs, and
reports (1) events/s from the first produced message to the last offset committed, i.e. events
durable in Parquet, and (2) the delay from producing a small probe batch on an idle stream to
seeing every probe event in the Parquet files. The machine's load average is printed beside:
shared machines are noisy.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from tests.services.kafka import KafkaBroker
from tests.stream.events import event_id, messages
from tests.stream.support import ROOT, StreamProcess, output_ids, stream_command, wait_for

_MAKE_TOKEN = """
import json, sys
from pathlib import Path
from pipeline.custody.keys import ensure_keys
from pipeline.custody.softhsm import ensure_token
token = ensure_token(Path(sys.argv[1]), label="bench")
ensure_keys(token.settings())
print(json.dumps(token.environ()))
"""


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    partitions = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    discovery = sys.argv[3] if len(sys.argv) > 3 else "30"
    work = Path(tempfile.mkdtemp(prefix="auditveil-bench-"))
    made = subprocess.run([sys.executable, "-c", _MAKE_TOKEN, str(work / "hsm")], cwd=ROOT, check=True,
                          capture_output=True, text=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUDITVEIL_", "SOFTHSM2"))}
    env.update(json.loads(made.stdout.strip().splitlines()[-1]))
    env["AUDITVEIL_KAFKA_DISCOVERY_SECONDS"] = discovery
    (work / "kafka").mkdir()
    broker = KafkaBroker(work / "kafka")
    broker.start()
    proc = None
    try:
        topic = broker.create_topic(partitions=partitions)
        cmd = stream_command(broker.bootstrap, [topic], work / "out", work / "lookup", "--group", "bench",
                             "--window", "2", "--status-seconds", "5")
        proc = StreamProcess(cmd, env, work / "stream.log")
        wait_for(lambda: all(v == 0 for v in broker.committed("bench", topic).values())
                 and len(broker.committed("bench", topic)) == partitions, 120, "the stream to start", proc=proc)
        produced = list(messages(n, partitions, batch_every=0))
        total = len(produced)
        start = time.monotonic()
        sender = threading.Thread(target=broker.produce, args=(topic, produced))
        sender.start()

        def committed() -> int:
            return sum(v or 0 for v in broker.committed("bench", topic).values())

        wait_for(lambda: committed() >= total, 1800, "the backlog", step=0.5, proc=proc)
        sender.join()
        elapsed = time.monotonic() - start
        time.sleep(3)
        probe = list(messages(n + 200, partitions))[n:]
        sent = time.monotonic()
        broker.produce(topic, probe)
        wanted = {event_id(i) for i in range(n, n + 200)}
        wait_for(lambda: wanted <= set(output_ids(work / "out")), 120, "the probe", step=0.1, proc=proc)
        delay = time.monotonic() - sent
        ids = output_ids(work / "out")
        assert len(ids) == n + 200 and max(ids.values()) == 1
        print(f"sustained: {n} events in {elapsed:.1f}s = {n / elapsed:.0f} events/s durable "
              f"({partitions} partitions, window 2s); produce -> visible Parquet: {delay:.2f}s; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    finally:
        if proc is not None:
            proc.stop()
        broker.stop()


if __name__ == "__main__":
    main()
