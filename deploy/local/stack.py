"""The whole auditveil stack on one machine, on loopback, without Docker.

    deploy/local/stack up       start everything (idempotent: says so if already running)
    deploy/local/stack demo     send sample audit events to Kafka, wait for them in Parquet,
                                re-identify one token with two custodian approvals
    deploy/local/stack status   what runs, where
    deploy/local/stack down     stop everything cleanly (--purge also deletes the state)

Components, each on 127.0.0.1 on a free port, each a child process recorded by id in
``$AUDITVEIL_STACK_DIR/state.json`` (default ``/tmp/auditveil-stack-<uid>``):

* SoftHSM2 token ``auditveil-stack`` with auditveil's keys (pipeline.custody.softhsm);
* Apache Kafka, KRaft, one node (``auditveil-kafka`` from scripts/setup.d/20-kafka.sh),
  topics ``kms-cloudtrail`` and ``vault-audit``;
* an S3-compatible server (MinIO, started by tests/services/s3.py's ``start_server``),
  buckets ``auditveil-events`` and ``auditveil-lookup``;
* PostgreSQL (Debian package) for the re-identification state;
* the streaming pipeline: ``auditveil run --streaming`` on Beam's Prism runner;
* the re-identification service: ``auditveil serve`` (plain HTTP, loopback only), with two
  enrolled custodians (alice, bob) and one investigator (ivan) and their API keys.

Every secret (HSM PIN, database password, API keys, custodians' signing keys) is a file with
mode 0600 under the state directory; nothing secret is passed on a command line.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
TOOLS = Path(os.environ.get("AUDITVEIL_TOOLS", "/opt/auditveil/tools"))
VENV_BIN = Path(sys.executable).parent
AUDITVEIL = str(VENV_BIN / "auditveil")
STATE = Path(os.environ.get("AUDITVEIL_STACK_DIR") or f"/tmp/auditveil-stack-{os.getuid()}")  # noqa: S108
TOPICS = ("kms-cloudtrail", "vault-audit")
EVENTS_BUCKET, LOOKUP_BUCKET = "auditveil-events", "auditveil-lookup"
CUSTODIANS = ("alice", "bob")
INVESTIGATOR = "ivan"
ORDER = ("kafka", "s3", "postgres", "stream", "reid")  # start order; stopped in reverse


def say(msg: str) -> None:
    print(f"[stack] {msg}", file=sys.stderr, flush=True)


class StackError(Exception):
    pass


# -- state ---------------------------------------------------------------------------------------


def _load() -> dict[str, Any]:
    path = STATE / "state.json"
    return json.loads(path.read_text()) if path.exists() else {"services": {}, "env": {}}


def _save(state: dict[str, Any]) -> None:
    tmp = STATE / ".state.json.tmp"
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
    tmp.replace(STATE / "state.json")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return status != "Z"
    return True


def _secret_file(path: Path, value: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return path


# -- processes -----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


def _wait(what: str, ready: Any, pid: int | None, timeout: float, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pid is not None and not _alive(pid):
            tail = log.read_text(errors="replace")[-1500:] if log and log.exists() else ""
            raise StackError(f"{what} exited during start-up{': ' + tail if tail else ''}")
        with contextlib.suppress(Exception):
            if ready():
                return
        time.sleep(0.3)
    raise StackError(f"{what} did not become ready within {timeout:.0f}s (log: {log})")


def _spawn(name: str, cmd: list[str], env: dict[str, str]) -> tuple[int, Path]:
    log = STATE / "logs" / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as fh:
        proc = subprocess.Popen(
            cmd,
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=STATE,
            start_new_session=True,
        )
    return proc.pid, log


def _signal(pid: int, sig: int) -> None:
    """Signal a process we started, and its process group when it leads one (our own spawns do;
    the S3 server from tests/services/s3.py does not)."""
    with contextlib.suppress(ProcessLookupError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


def _stop_group(name: str, pid: int, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
    """Stop a process we started and, when it leads its own group, the children in it."""
    if not _alive(pid):
        return
    _signal(pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.2)
    if _alive(pid):
        say(f"{name} did not stop in {timeout:.0f}s; killing it")
        _signal(pid, signal.SIGKILL)


# -- components ----------------------------------------------------------------------------------


def _start_hsm(state: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """Two SoftHSM2 tokens with auditveil's keys; returns the environment of the pipeline
    (pipeline token PIN only) and of the re-identification service (custodian token PIN only)."""
    from pipeline.custody.keys import ensure_keys
    from pipeline.custody.softhsm import ensure_token

    token = ensure_token(STATE / "hsm", label="auditveil-stack")
    ensure_keys(token.settings())
    pipeline_env = token.pipeline_environ()
    reid_env = {k: v for k, v in token.environ().items() if k != "AUDITVEIL_PKCS11_PIN_FILE"}
    say(f"SoftHSM2 tokens '{token.label}' and '{token.custodian_label}' ready, keys created")
    return pipeline_env, reid_env


def _start_kafka(state: dict[str, Any], env: dict[str, str]) -> str:
    script = TOOLS / "bin" / "auditveil-kafka"
    if not os.access(script, os.X_OK):
        raise StackError(f"{script} is missing: run scripts/setup.sh (scripts/setup.d/20-kafka.sh)")
    port = _free_port()
    while _port_open(port + 1):
        port = _free_port()
    pid, log = _spawn("kafka", [str(script), str(STATE / "kafka"), str(port)], env)
    state["services"]["kafka"] = {"pid": pid, "port": port, "log": str(log)}
    _save(state)
    bootstrap = f"127.0.0.1:{port}"

    def ready() -> bool:
        from kafka import KafkaAdminClient

        KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000).close()
        return True

    _wait("Kafka", ready, pid, 90, log)
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        for topic in TOPICS:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics([NewTopic(topic, 2, 1)])
    finally:
        admin.close()
    say(f"Kafka on {bootstrap}, topics {', '.join(TOPICS)}")
    return bootstrap


def _start_s3(state: dict[str, Any]) -> dict[str, str]:
    from tests.services.s3 import start_server

    data = STATE / "s3"
    data.mkdir(exist_ok=True)
    server = start_server(data)
    state["services"]["s3"] = {
        "pid": server.proc.pid,
        "port": server.port,
        "log": str(data / "server.log"),
        "kind": server.kind,
    }
    _save(state)
    client = server.client()
    for bucket in (EVENTS_BUCKET, LOOKUP_BUCKET):
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
            client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": server.region})
    say(f"S3 ({server.kind}) on {server.endpoint}, buckets {EVENTS_BUCKET}, {LOOKUP_BUCKET}")
    env = server.env()
    env["AWS_REGION"] = server.region
    return env


def _pg_bindir() -> Path:
    base = Path("/usr/lib/postgresql")
    for major in sorted(base.glob("*"), reverse=True) if base.exists() else []:
        if (major / "bin" / "postgres").exists():
            return major / "bin"
    raise StackError("PostgreSQL is not installed (Debian package postgresql): run scripts/setup.sh")


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _start_postgres(state: dict[str, Any], env: dict[str, str]) -> dict[str, str]:
    """PostgreSQL in the state directory, on loopback, password authentication.

    Same start-up as tests/services/postgres.py (whose logic lives inside a pytest fixture and
    cannot be called from here)."""
    import psycopg

    bindir = _pg_bindir()
    root = STATE / "postgres"
    data = root / "data"
    root.mkdir(exist_ok=True)
    pwfile = root / "pw"
    password_file = STATE / "secrets" / "postgres.password"
    if not data.exists():
        password = secrets.token_hex(16)
        _secret_file(password_file, password)
        pwfile.write_text(password + "\n")
        if os.geteuid() == 0:
            shutil.chown(root, "postgres", "postgres")
            shutil.chown(pwfile, "postgres", "postgres")
        os.chmod(pwfile, 0o600)
        subprocess.run(
            _as_postgres(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    "--auth=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "--encoding=UTF8",
                    "--no-instructions",
                ]
            ),
            check=True,
            capture_output=True,
        )
        pwfile.unlink()
    password = password_file.read_text().strip()
    port = _free_port()
    cmd = _as_postgres([str(bindir / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(port), "-k", str(root)])
    pid, log = _spawn("postgres", cmd, env)
    state["services"]["postgres"] = {"pid": pid, "port": port, "log": str(log), "data": str(data)}
    _save(state)
    admin = f"postgresql://postgres:{password}@127.0.0.1:{port}/postgres"
    _wait("PostgreSQL", lambda: psycopg.connect(admin, connect_timeout=2).close() is None, pid, 60, log)
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = 'auditveil'").fetchone():
            conn.execute("CREATE DATABASE auditveil")
    pgpass = _secret_file(STATE / "secrets" / "pgpass", f"127.0.0.1:{port}:auditveil:postgres:{password}\n")
    say(f"PostgreSQL on 127.0.0.1:{port}, database auditveil")
    return {
        "AUDITVEIL_REID_DB": f"postgresql://postgres@127.0.0.1:{port}/auditveil",
        "PGPASSFILE": str(pgpass),
    }


def _cli(env: dict[str, str], *args: str, stdin: bytes | None = None) -> str:
    proc = subprocess.run([AUDITVEIL, *args], env=env, input=stdin, capture_output=True, timeout=120)
    if proc.returncode != 0:
        raise StackError(
            f"auditveil {args[0]} {args[1] if len(args) > 1 else ''} failed: "
            f"{proc.stderr.decode(errors='replace').strip()[-800:]}"
        )
    return proc.stdout.decode()


def _enrol(env: dict[str, str]) -> None:
    people = STATE / "people"
    people.mkdir(mode=0o700, exist_ok=True)
    enrolled = _cli(env, "reid", "custodian", "list")
    for name in CUSTODIANS:
        prefix = people / name
        if not (people / f"{name}.key.pem").exists():
            _cli(env, "reid", "keygen", str(prefix))
        if name not in enrolled.split():
            _cli(env, "reid", "custodian", "add", name, "--public-key", str(people / f"{name}.pub.pem"))
    for name, role in [(c, "custodian") for c in CUSTODIANS] + [(INVESTIGATOR, "investigator")]:
        key = people / f"{name}.apikey"
        if not key.exists():
            _cli(env, "reid", "apikey", "add", name, "--role", role, "--out", str(key))
    say(f"custodians {', '.join(CUSTODIANS)} enrolled; API keys for them and investigator {INVESTIGATOR}")


def _start_stream(state: dict[str, Any], env: dict[str, str], bootstrap: str) -> None:
    cmd = [
        AUDITVEIL,
        "run",
        "--streaming",
        *[a for t in TOPICS for a in ("--topic", t)],
        "--kafka-bootstrap",
        bootstrap,
        "--out",
        f"s3://{EVENTS_BUCKET}",
        "--lookup",
        f"s3://{LOOKUP_BUCKET}",
        "--window",
        "5",
        "--status-seconds",
        "5",
        "--no-progress",
        # `auditveil run --streaming` itself lifts Beam's 300 s job_server_timeout to a day for
        # unbounded runs (see pipeline/stream/cli.py).
    ]
    pid, log = _spawn("stream", cmd, env)
    state["services"]["stream"] = {"pid": pid, "log": str(log)}
    _save(state)
    # The preflight (HSM, topics, destinations, Prism) fails within seconds when something is
    # wrong; still running after that means the pipeline is reading Kafka.
    deadline = time.monotonic() + 12
    _wait("the streaming pipeline", lambda: time.monotonic() > deadline, pid, 30, log)
    say("streaming pipeline running (Prism), windows of 5 s")


def _start_reid(state: dict[str, Any], env: dict[str, str]) -> str:
    port = _free_port()
    pid, log = _spawn(
        "reid",
        [AUDITVEIL, "serve", "--host", "127.0.0.1", "--port", str(port), "--lookup", f"s3://{LOOKUP_BUCKET}"],
        env,
    )
    state["services"]["reid"] = {"pid": pid, "port": port, "log": str(log)}
    _save(state)
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as resp:  # noqa: S310 - loopback
            return bool(resp.status == 200)

    _wait("the re-identification service", ready, pid, 60, log)
    say(f"re-identification service on {url}")
    return url


def up() -> int:
    state = _load()
    running = {n: s for n, s in state["services"].items() if _alive(int(s["pid"]))}
    if running:
        say(f"already running: {', '.join(sorted(running))} (deploy/local/stack down to stop)")
        return 0
    STATE.mkdir(parents=True, exist_ok=True)
    os.chmod(STATE, 0o711)  # noqa: S103 - traverse only: PostgreSQL's account must reach its data
    state = {"services": {}, "env": {}}
    _save(state)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("AUDITVEIL_", "AWS_", "PG"))}
    base_env["PATH"] = f"{VENV_BIN}:{base_env.get('PATH', '/usr/bin:/bin')}"
    base_env["AUDITVEIL_STATE_DIR"] = str(STATE / "reid-state")
    try:
        pipeline_hsm, reid_hsm = _start_hsm(state)
        env = dict(base_env)
        bootstrap = _start_kafka(state, base_env)
        env.update(_start_s3(state))
        env.update(_start_postgres(state, base_env))
        env["AUDITVEIL_REID_LOOKUP"] = f"s3://{LOOKUP_BUCKET}"
        env["AUDITVEIL_KAFKA_BOOTSTRAP"] = bootstrap
        state["env"] = {k: v for k, v in env.items() if k not in base_env or base_env[k] != v}
        _save(state)
        _enrol(env)
        # Each process gets only its own token's PIN: the pipeline computes tokens and cannot
        # unwrap; the service unwraps and cannot compute tokens.
        _start_stream(state, {**env, **pipeline_hsm}, bootstrap)
        url = _start_reid(state, {**env, **reid_hsm})
    except BaseException as exc:
        say(f"start-up failed: {exc}; stopping what was started")
        down(purge=False)
        return 1
    state["reid_url"] = url
    state["bootstrap"] = bootstrap
    _save(state)
    print(f"""
auditveil stack is up (state and logs in {STATE}).
  Kafka        {bootstrap}   topics: {", ".join(TOPICS)}
  S3           {env["AUDITVEIL_STORAGE_S3_ENDPOINT"]}   s3://{EVENTS_BUCKET}  s3://{LOOKUP_BUCKET}
  PostgreSQL   {env["AUDITVEIL_REID_DB"]}
  reid service {url}   API keys: {STATE / "people"}/<name>.apikey
Next: deploy/local/stack demo    (events -> Parquet -> two approvals -> reveal)
Stop: deploy/local/stack down""")
    return 0


def down(purge: bool = False) -> int:
    state = _load()
    services = state.get("services", {})
    for name in reversed(ORDER):
        svc = services.get(name)
        if not svc:
            continue
        pid = int(svc["pid"])
        if not _alive(pid):
            continue
        if name == "postgres":
            # Fast shutdown of the postmaster we started (its pid is in its own pid file).
            pidfile = Path(svc["data"]) / "postmaster.pid"
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(pidfile.read_text().split("\n", 1)[0]), signal.SIGINT)
        _stop_group(name, pid, signal.SIGTERM, 40 if name == "kafka" else 30)
        say(f"stopped {name}")
    if STATE.exists():
        if purge:
            shutil.rmtree(STATE)
            say(f"removed {STATE}")
        else:
            state["services"] = {}
            _save(state)
    return 0


def status() -> int:
    state = _load()
    if not state.get("services"):
        print("not running")
        return 1
    ok = True
    for name in ORDER:
        svc = state["services"].get(name)
        if not svc:
            print(f"{name:9} not started")
            ok = False
            continue
        alive = _alive(int(svc["pid"]))
        ok &= alive
        port = f"127.0.0.1:{svc['port']}" if "port" in svc else ""
        print(f"{name:9} {'running' if alive else 'STOPPED':8} pid {svc['pid']:<8} {port}")
    return 0 if ok else 1


# -- demo ----------------------------------------------------------------------------------------


def _sample_messages(n: int) -> Iterator[tuple[str, bytes, str, str]]:
    """``n`` fresh events (timestamps now) as (topic, message, CloudTrail event id, user name);
    Vault entries carry no CloudTrail id and yield empty strings."""
    import orjson

    from pipeline.sample.generate import ACCOUNTS, REGIONS, cloudtrail_event, vault_entries

    rnd = random.Random(secrets.randbits(32))
    now = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=30)
    for i in range(n):
        when = now + dt.timedelta(milliseconds=200 * i)
        if i % 4 == 3:
            for entry in vault_entries(rnd, when):
                yield TOPICS[1], orjson.dumps(entry), "", ""
        else:
            ev = cloudtrail_event(rnd, when, ACCOUNTS[i % 2], REGIONS[0])
            name = ev.get("userIdentity", {}).get("userName")
            yield TOPICS[0], orjson.dumps(ev), str(ev["eventID"]), name if isinstance(name, str) else ""


def _http(url: str, key: str, method: str = "GET", body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    if not url.startswith("http://127.0.0.1:"):
        raise StackError("the demo only talks to the local service")
    req = urllib.request.Request(  # noqa: S310 - checked above: loopback HTTP only
        url,
        data=data,
        method=method,
        headers={
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310 - loopback
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        raise StackError(f"{method} {url.split('/v1/', 1)[-1]} -> {exc.code}: {exc.read()[:300]!r}") from None


def demo(events: int, timeout: float) -> int:
    import pyarrow.parquet as pq
    from kafka import KafkaProducer
    from pyarrow.fs import FileSelector

    from pipeline.storage.fs import s3_filesystem

    state = _load()
    if not state.get("services") or not all(_alive(int(s["pid"])) for s in state["services"].values()):
        raise StackError("the stack is not running: deploy/local/stack up")
    os.environ.update(state["env"])  # S3 credentials for pyarrow, HSM for `reid sign`'s parent
    env = dict(os.environ)
    producer = KafkaProducer(bootstrap_servers=state["bootstrap"], acks="all", linger_ms=5)
    user_of: dict[str, str] = {}  # CloudTrail event id -> original user name
    sent = 0
    for topic, message, event_id, user in _sample_messages(events):
        producer.send(topic, message)
        if event_id:
            user_of[event_id] = user
        sent += 1
    producer.flush(60)
    producer.close()
    say(f"sent {sent} audit events to Kafka")

    from pipeline.config import load_settings

    settings = load_settings(env={k: v for k, v in env.items() if k.startswith("AUDITVEIL_")})
    fs = s3_filesystem(settings.storage)
    deadline = time.monotonic() + timeout
    mine: list[dict[str, Any]] = []
    last_error = ""
    while time.monotonic() < deadline:
        rows: list[dict[str, Any]] = []
        try:
            files = fs.get_file_info(FileSelector(f"{EVENTS_BUCKET}/source=cloudtrail", recursive=True))
        except OSError as exc:
            files, last_error = [], f"{type(exc).__name__}: {str(exc)[:200]}"
        for info in files:
            if not info.is_file or not info.path.endswith(".parquet"):
                continue
            try:  # file by file: one unreadable or differently typed file must not hide the rest
                rows += pq.read_table(info.path, filesystem=fs, columns=["event_id", "actor_name"]).to_pylist()
            except (OSError, ValueError) as exc:
                last_error = f"{type(exc).__name__} in {info.path.rsplit('/', 1)[-1]}: {str(exc)[:200]}"
        mine = [r for r in rows if r["event_id"] in user_of]
        if len(mine) == len(user_of):
            break
        time.sleep(2)
    if not mine:
        raise StackError(
            f"the events did not appear in s3://{EVENTS_BUCKET} within {timeout:.0f}s "
            f"({last_error or 'no rows yet'}; see {STATE / 'logs' / 'stream.log'})"
        )
    say(f"{len(mine)} of the {len(user_of)} CloudTrail events sent are in s3://{EVENTS_BUCKET} (Parquet)")
    originals = {u for u in user_of.values() if u}
    for row in mine:
        if any(u in str(row["actor_name"]) for u in originals):
            raise StackError("an original user name reached the Parquet output")
    row = next(r for r in mine if r["actor_name"] and user_of[r["event_id"]])
    token, expected = row["actor_name"], user_of[row["event_id"]]
    say(f"analyst sees actor_name = {token[:24]}…")

    url = state["reid_url"]
    people = STATE / "people"
    key = {p: (people / f"{p}.apikey").read_text().strip() for p in (*CUSTODIANS, INVESTIGATOR)}
    req = _http(
        f"{url}/v1/requests",
        key[INVESTIGATOR],
        "POST",
        {"case": "DEMO-1", "reason": "local stack demo (GDPR Art. 6(1)(f))", "tokens": [token]},
    )
    rid = req["id"]
    say(f"{INVESTIGATOR} filed request {rid}")
    for custodian in CUSTODIANS:
        shown = _http(f"{url}/v1/requests/{rid}", key[custodian])
        signature = _cli(
            env,
            "reid",
            "sign",
            shown["approve_message"],
            "--signing-key",
            str(people / f"{custodian}.key.pem"),
        ).strip()
        after = _http(f"{url}/v1/requests/{rid}/approve", key[custodian], "POST", {"signature": signature})
        say(f"{custodian} approved (status: {after.get('status')})")
    revealed = _http(f"{url}/v1/requests/{rid}/reveal", key[INVESTIGATOR], "POST", {})
    value = revealed["values"].get(token)
    if value is None:
        raise StackError(
            f"the reveal returned no value (no_entry={revealed.get('no_entry')}, "
            f"unrecoverable={revealed.get('unrecoverable')})"
        )
    if value != expected:
        raise StackError("the revealed value is not the user name that was sent in that event")
    verify = _http(f"{url}/v1/log/verify", key[CUSTODIANS[0]])
    if not verify.get("ok"):
        raise StackError(f"the audit log does not verify: {verify.get('problem')}")
    print(
        f"re-identified {token[:24]}… -> {value!r} after approvals by {' and '.join(CUSTODIANS)}; "
        f"audit log verified ({verify['records']} records, head {verify['head'][:20]}…)"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="deploy/local/stack", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("up", help="start everything")
    d = sub.add_parser("demo", help="events -> Parquet -> two approvals -> reveal")
    d.add_argument("--events", type=int, default=200)
    d.add_argument("--timeout", type=float, default=180)
    s = sub.add_parser("down", help="stop everything")
    s.add_argument("--purge", action="store_true", help="also delete the state directory")
    sub.add_parser("status", help="what runs, where")
    args = parser.parse_args(argv)
    try:
        if args.action == "up":
            return up()
        if args.action == "down":
            return down(args.purge)
        if args.action == "status":
            return status()
        return demo(args.events, args.timeout)
    except StackError as exc:
        print(f"stack: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
