"""The Flink deployment's Beam path, proven as far as this machine allows.

What runs here: the exact driver command of deploy/k8s/base/flink/flinkdeployment.yaml,
through deploy/image/flink-driver.sh (what Beam's FlinkPortableClientEntryPoint invokes on
the JobManager), submitting with PortableRunner to a portable job service, with the Python
SDK harnesses started by deploy/image/beam_worker_pool.py on loopback (the TaskManager
sidecar) in EXTERNAL mode. The job service is Beam's Prism, standing in for the Beam job
service that the entry point starts inside Flink: Beam's Flink job-server jar for the pinned
Beam version is not served by the Maven registry reachable here (see deploy/README.md,
"What was verified where"), so Flink itself does not run in these tests.

What is checked at construction level only: FlinkRunner options (version, local job-server
jar, no download), and the Dockerfile/manifest/lock agreeing on the Beam and Flink versions.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.custody.softhsm import SoftHsmToken

ROOT = Path(__file__).resolve().parents[2]
IMAGE = ROOT / "deploy" / "image"
FLINK_DEPLOYMENT = ROOT / "deploy" / "k8s" / "base" / "flink" / "flinkdeployment.yaml"
TOOLS = Path(os.environ.get("AUDITVEIL_TOOLS", "/opt/auditveil/tools"))
VENV_BIN = Path(sys.executable).parent


def _flink_deployment() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(FLINK_DEPLOYMENT.read_text(encoding="utf-8"))
    return doc


def _driver_command() -> list[str]:
    args = _flink_deployment()["spec"]["job"]["args"]
    assert args[0] == "--driver-cmd"
    return shlex.split(args[1])


def _dockerfile_args() -> dict[str, str]:
    text = (IMAGE / "Dockerfile").read_text(encoding="utf-8")
    return dict(re.findall(r"^ARG ([A-Z_]+)=(\S+)$", text, re.M))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[Any], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited early")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not start listening in time")


def _stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# -- versions and runner options (construction level) -------------------------------------------


def test_image_beam_and_flink_versions_match_the_installed_sdk() -> None:
    import apache_beam
    from apache_beam.options.pipeline_options import FlinkRunnerOptions

    args = _dockerfile_args()
    assert args["BEAM_VERSION"] == apache_beam.__version__
    lock = (ROOT / "requirements.lock").read_text(encoding="utf-8")
    assert f"apache-beam=={apache_beam.__version__}" in lock.splitlines()
    assert args["FLINK_MINOR"] in FlinkRunnerOptions.PUBLISHED_FLINK_VERSIONS
    flink_tag = args["FLINK_IMAGE"].split(":", 1)[1]
    assert flink_tag.startswith(args["FLINK_MINOR"] + ".")
    assert _flink_deployment()["spec"]["flinkVersion"] == "v" + args["FLINK_MINOR"].replace(".", "_")


def test_flink_runner_takes_the_local_job_server_jar_and_never_downloads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import urllib.request

    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.runners.portability import job_server
    from apache_beam.runners.portability.flink_runner import FlinkJarJobServer

    def no_network(*_a: object, **_k: object) -> None:
        raise AssertionError("Beam tried to download something")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setattr(urllib.request, "urlretrieve", no_network)
    jar = tmp_path / "beam-runners-flink-1.20-job-server-2.77.0.jar"
    jar.write_bytes(b"PK\x05\x06" + b"\x00" * 18)  # an empty zip: only the path matters here
    options = PipelineOptions(
        [
            "--runner=FlinkRunner",
            "--flink_version=1.20",
            f"--flink_job_server_jar={jar}",
            "--flink_master=[local]",
        ]
    )
    server = FlinkJarJobServer(options)
    assert server.path_to_jar() == str(jar)
    assert job_server.JavaJarJobServer.local_jar(str(jar)) == str(jar)
    missing = PipelineOptions(["--flink_job_server_jar=/nonexistent/job-server.jar"])
    with pytest.raises(ValueError, match="Unable to parse jar URL"):
        FlinkJarJobServer(missing).path_to_jar()


def test_manifest_driver_command_is_a_valid_auditveil_run_with_portable_options() -> None:
    from apache_beam.options.pipeline_options import (
        PipelineOptions,
        PortableOptions,
        SetupOptions,
        StandardOptions,
    )

    from pipeline.cli import build_parser
    from pipeline.stream.cli import _beam_args

    cmd = _driver_command()
    assert cmd[0] == "/opt/auditveil/bin/flink-driver.sh"
    args = build_parser().parse_args(["run", *cmd[1:]])
    assert args.streaming and args.topic and args.out.startswith("s3://") and args.lookup.startswith("s3://")
    beam = [*_beam_args(args), "--job_endpoint=localhost:8099"]  # what the entry point appends
    options = PipelineOptions(beam)
    assert options.view_as(StandardOptions).runner == "PortableRunner"
    assert options.view_as(StandardOptions).streaming is True
    portable = options.view_as(PortableOptions)
    assert portable.environment_type == "EXTERNAL"
    assert portable.environment_config == "localhost:50000"
    assert portable.job_endpoint == "localhost:8099"
    assert options.view_as(SetupOptions).sdk_location == "container"  # no SDK tarball staged


def test_flink_driver_wrapper_passes_the_job_endpoint_as_a_beam_option(tmp_path: Path) -> None:
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    record = tmp_path / "argv"
    stub = fake_bin / "auditveil"
    stub.write_text(f'#!/bin/bash\nprintf "%s\\n" "$@" > {shlex.quote(str(record))}\n')
    stub.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake_bin}:{os.environ['PATH']}"}
    subprocess.run(
        [
            "bash",
            str(IMAGE / "flink-driver.sh"),
            "--streaming",
            "--topic",
            "a b",
            "--job_endpoint=localhost:41234",
        ],
        env=env,
        check=True,
        timeout=30,
    )
    argv = record.read_text().splitlines()
    assert argv == ["run", "--streaming", "--topic", "a b", "--beam-option", "job_endpoint=localhost:41234"]


# -- the portable path, for real -----------------------------------------------------------------


@dataclass(frozen=True)
class PortablePath:
    job_port: int
    pool_port: int
    env: dict[str, str]
    logs: Path

    def worker_errors(self) -> str:
        """The SDK harnesses' error lines (class names and messages, which carry no data)."""
        text = (self.logs / "pool.log").read_text(errors="replace")
        lines = [ln for ln in text.splitlines() if re.search(r"(Error|Exception|Unavailable)\b", ln)]
        return "\nworker pool errors:\n" + "\n".join(dict.fromkeys(lines[-40:]))

    def beam_options(self) -> list[str]:
        return [
            "--runner",
            "PortableRunner",
            "--beam-option",
            "environment_type=EXTERNAL",
            "--beam-option",
            f"environment_config=localhost:{self.pool_port}",
            "--beam-option",
            "sdk_location=container",
        ]


@pytest.fixture(scope="module")
def portable_path(softhsm: SoftHsmToken, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PortablePath]:
    """A Beam job service (Prism) and the TaskManager-sidecar worker pool, both on loopback.

    The worker pool gets the environment a TaskManager sidecar gets: the HSM module, the
    pipeline token's label and PIN *file* (not the custodian token's PIN); its SDK harness
    processes inherit it.
    """
    prism = TOOLS / "bin" / "prism-2.77.0"
    if not os.access(prism, os.X_OK):
        pytest.fail("Beam's Prism runner is missing: run scripts/setup.sh")
    logs = tmp_path_factory.mktemp("portable")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITVEIL_")}
    env.update(softhsm.pipeline_environ())  # the pipeline token's PIN only, never the custodians'
    env["PATH"] = f"{VENV_BIN}:{env.get('PATH', '/usr/bin:/bin')}"
    job_port = _free_port()
    with open(logs / "prism.log", "wb") as prism_log, open(logs / "pool.log", "wb") as pool_log:
        job = subprocess.Popen(
            [str(prism), "--job_port", str(job_port), "--serve_http=false", "--idle_shutdown_timeout=10m"],
            stdout=prism_log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        pool = subprocess.Popen(
            [sys.executable, str(IMAGE / "beam_worker_pool.py"), "--host", "127.0.0.1", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=pool_log,
            env=env,
            start_new_session=True,
        )
    try:
        assert pool.stdout is not None
        line = pool.stdout.readline().decode().strip()
        match = re.fullmatch(r"listening on 127\.0\.0\.1:(\d+)", line)
        assert match, f"the worker pool did not start: {line!r}"
        pool_port = int(match.group(1))
        _wait_port(job_port, job, "the Prism job service")
        yield PortablePath(job_port, pool_port, env, logs)
    finally:
        _stop(pool)
        _stop(job)


def test_worker_pool_is_bound_to_loopback_only(portable_path: PortablePath) -> None:
    out = subprocess.run(
        ["ss", "-Hltn", f"sport = :{portable_path.pool_port}"], capture_output=True, text=True, check=True
    ).stdout
    local = {line.split()[3] for line in out.splitlines() if line.strip()}
    assert local, "nothing listens on the worker pool's port"
    assert all(addr.rsplit(":", 1)[0].strip("[]").removeprefix("::ffff:") == "127.0.0.1" for addr in local), local


PROBE = """
import sys
import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to

with beam.Pipeline(options=PipelineOptions(sys.argv[1:])) as p:
    squares = p | beam.Create(range(10)) | beam.Map(lambda x: x * x) | beam.CombineGlobally(sum)
    assert_that(squares, equal_to([285]))
"""


def test_a_pipeline_runs_through_the_worker_pool_in_external_mode(portable_path: PortablePath) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            PROBE,
            "--runner=PortableRunner",
            f"--job_endpoint=localhost:{portable_path.job_port}",
            "--environment_type=EXTERNAL",
            f"--environment_config=localhost:{portable_path.pool_port}",
            "--sdk_location=container",
        ],
        env=portable_path.env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


def _manifest_driver_for(path: PortablePath, **replace: str) -> list[str]:
    """The manifest's driver command, pointed at this machine: same script, same runner and
    environment options, local topics and paths instead of the cluster's."""
    cmd = _driver_command()
    out = ["bash", str(IMAGE / "flink-driver.sh")]
    i = 1
    while i < len(cmd):
        arg = cmd[i]
        if arg in ("--topic", "--out", "--lookup"):
            i += 2
            continue
        if arg == "--strict-sovereignty":  # local paths here; the guard is for s3:// outputs
            i += 1
            continue
        if arg == "--beam-option" and cmd[i + 1].startswith("environment_config="):
            out += [arg, f"environment_config=localhost:{path.pool_port}"]
            i += 2
            continue
        out.append(arg)
        i += 1
    for key, value in replace.items():
        for v in value.split("\0"):
            out += [f"--{key.replace('_', '-')}", v]
    return [*out, f"--job_endpoint=localhost:{path.job_port}"]


def test_manifest_streaming_driver_runs_bounded_kafka_through_the_portable_path(
    portable_path: PortablePath, kafka_broker: Any, tmp_path: Path
) -> None:
    import pyarrow.dataset as ds

    from tests.stream.events import SECRET_MARKERS, messages

    topic = kafka_broker.create_topic(partitions=2)
    n = kafka_broker.produce(topic, messages(60, partitions=2))
    out, lookup = tmp_path / "out", tmp_path / "lookup"
    cmd = _manifest_driver_for(
        portable_path, topic=topic, out=str(out), lookup=str(lookup), kafka_bootstrap=kafka_broker.bootstrap
    )
    cmd.insert(-1, "--until-end")
    cmd.insert(-1, "--group")
    cmd.insert(-1, f"g-{topic}")
    proc = subprocess.run(cmd, env=portable_path.env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:] + portable_path.worker_errors()
    events = ds.dataset(str(out), format="parquet", partitioning="hive", exclude_invalid_files=True).to_table()
    assert events.num_rows == n
    assert any((lookup / "entries").rglob("*")), "no sealed lookup entries were written"
    assert any((lookup / "deks").glob("*.json")), "no wrapped DEKs were written"
    text = " ".join(str(v) for col in events.columns for v in col.to_pylist())
    for marker in SECRET_MARKERS:
        assert marker not in text, "an identifier reached the analysts' Parquet"
    assert kafka_broker.committed(f"g-{topic}", topic), "offsets were not committed after the files were durable"


def test_batch_driver_runs_through_the_portable_path(
    portable_path: PortablePath, tmp_path: Path, fixtures_dir: Path
) -> None:
    import pyarrow.dataset as ds

    out, lookup = tmp_path / "out", tmp_path / "lookup"
    cmd = [
        "bash",
        str(IMAGE / "flink-driver.sh"),
        "--input",
        str(fixtures_dir),
        "--out",
        str(out),
        "--lookup",
        str(lookup),
        "--no-progress",
        *portable_path.beam_options(),
        f"--job_endpoint=localhost:{portable_path.job_port}",
    ]
    proc = subprocess.run(cmd, env=portable_path.env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:] + portable_path.worker_errors()
    events = ds.dataset(str(out), format="parquet", partitioning="hive", exclude_invalid_files=True).to_table()
    assert events.num_rows > 0
    assert any((lookup / "deks").glob("*.json"))
