"""A real Apache Kafka broker (KRaft, single node) on loopback, for the streaming tests.

The broker is the one ``scripts/setup.d/20-kafka.sh`` installs from Maven Central under
``$AUDITVEIL_TOOLS/kafka-<version>``. The session fixture ``kafka_broker`` formats a fresh
data directory in the session's temporary folder, starts ``kafka.Kafka`` on two free
loopback ports, waits until it answers, and stops it at the end. It can be stopped, killed
and restarted on the same ports and data (for the broker-restart fault test).

Helpers: :meth:`KafkaBroker.create_topic`, :meth:`KafkaBroker.produce`,
:meth:`KafkaBroker.committed`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

TOOLS = Path(os.environ.get("AUDITVEIL_TOOLS", "/opt/auditveil/tools"))
KAFKA_VERSION = os.environ.get("AUDITVEIL_KAFKA_VERSION", "3.9.1")
KAFKA_HOME = TOOLS / f"kafka-{KAFKA_VERSION}"

SERVER_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs={data}
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
log.flush.interval.messages=1
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


class KafkaBroker:
    """One single-node KRaft broker in ``workdir``, listening on 127.0.0.1 only."""

    def __init__(self, workdir: Path, home: Path = KAFKA_HOME) -> None:
        self.workdir = workdir
        self.home = home
        self.port = free_port()
        self.controller_port = free_port()
        while self.controller_port == self.port:
            self.controller_port = free_port()
        self.data = workdir / "data"
        self.log_path = workdir / "broker.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._formatted = False

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _java(self, *args: str) -> list[str]:
        return ["java", "-Xms128m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                f"-Dlog4j.configuration=file:{self.home / 'log4j.properties'}",
                "-cp", str(self.home / "libs" / "*"), *args]

    def _format(self) -> None:
        props = self.workdir / "server.properties"
        props.write_text(SERVER_PROPERTIES.format(port=self.port, controller=self.controller_port, data=self.data))
        cluster = subprocess.run(self._java("kafka.tools.StorageTool", "random-uuid"), check=True,
                                 capture_output=True, text=True).stdout.strip().splitlines()[-1]
        subprocess.run(self._java("kafka.tools.StorageTool", "format", "-t", cluster, "-c", str(props)),
                       check=True, capture_output=True)
        self._formatted = True

    def start(self, timeout: float = 60.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        if not self._formatted:
            self._format()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self._java("kafka.Kafka", str(self.workdir / "server.properties")),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 60.0) -> None:
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"the Kafka broker exited early; see {self.log_path}")
            if _port_open(self.port):
                try:
                    admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=5000)
                    admin.list_topics()
                    admin.close()
                    return
                except KafkaError:
                    pass
            time.sleep(0.3)
        raise RuntimeError(f"the Kafka broker did not become ready in {timeout:.0f}s; see {self.log_path}")

    def stop(self, timeout: float = 30.0) -> None:
        """A clean shutdown (SIGTERM), waiting for the process to exit."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def restart(self, down_seconds: float = 0.0) -> None:
        self.stop()
        if down_seconds:
            time.sleep(down_seconds)
        self.start()

    # --- helpers -------------------------------------------------------------------------------

    def create_topic(self, name: str | None = None, partitions: int = 1) -> str:
        from kafka import KafkaAdminClient
        from kafka.admin import NewTopic

        name = name or f"t-{uuid.uuid4().hex[:10]}"
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap)
        try:
            admin.create_topics([NewTopic(name, partitions, 1)])
        finally:
            admin.close()
        self._wait_topic(name, partitions)
        return name

    def add_partitions(self, topic: str, total: int) -> None:
        from kafka import KafkaAdminClient
        from kafka.admin import NewPartitions

        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap)
        try:
            admin.create_partitions({topic: NewPartitions(total)})
        finally:
            admin.close()
        self._wait_topic(topic, total)

    def _wait_topic(self, name: str, partitions: int, timeout: float = 30.0) -> None:
        from kafka import KafkaConsumer

        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap)
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                consumer.topics()  # refresh metadata
                parts = consumer.partitions_for_topic(name)
                if parts and len(parts) >= partitions:
                    return
                time.sleep(0.2)
        finally:
            consumer.close()
        raise RuntimeError("a test topic did not appear in time")

    def producer(self, **extra: Any) -> Any:
        from kafka import KafkaProducer

        return KafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=5, acks="all",
                             batch_size=256 * 1024, **extra)

    def produce(self, topic: str, values: Iterable[bytes | tuple[int, bytes]],
                timestamp_ms: int | None = None) -> int:
        """Send each value (or ``(partition, value)``) to ``topic``; returns how many were sent."""
        producer = self.producer()
        n = 0
        try:
            for item in values:
                if isinstance(item, tuple):
                    producer.send(topic, item[1], partition=item[0], timestamp_ms=timestamp_ms)
                else:
                    producer.send(topic, item, timestamp_ms=timestamp_ms)
                n += 1
            producer.flush(60)
        finally:
            producer.close(10)
        return n

    def committed(self, group: str, topic: str) -> dict[int, int | None]:
        """The group's committed offset per partition of ``topic``."""
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=group, enable_auto_commit=False)
        try:
            parts = consumer.partitions_for_topic(topic) or set()
            return {p: consumer.committed(TopicPartition(topic, p)) for p in sorted(parts)}
        finally:
            consumer.close(autocommit=False)

    def end_offsets(self, topic: str) -> dict[int, int]:
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap)
        try:
            tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or set())]
            return {tp.partition: int(o) for tp, o in consumer.end_offsets(tps).items()}
        finally:
            consumer.close()


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """A real Kafka broker on loopback for the whole session (installed by scripts/setup.sh)."""
    if not (KAFKA_HOME / "libs").is_dir():
        pytest.fail(f"Apache Kafka is not installed at {KAFKA_HOME}: run scripts/setup.sh")
    broker = KafkaBroker(tmp_path_factory.mktemp("kafka"))
    broker.start()
    try:
        yield broker
    finally:
        with contextlib.suppress(Exception):
            broker.stop()
        broker.kill()
