"""HSM faults with the real SoftHSM2: unavailable at start, and revoked in the middle of a run.

At start (wrong PIN, unknown token label, missing PKCS#11 module, empty token directory, HMAC
key missing, HSM already revoked): exit code 3 (2 for a missing PIN, a configuration error),
one clear line on stderr, no traceback, no secret, and not a single output or lookup file.

Mid-run: a PKCS#11 module that forwards to SoftHSM2 and starts answering CKR_DEVICE_REMOVED
when a trigger file appears (tests/hardening/faulty_pkcs11.c, built here with the system C
compiler) is revoked once the first Parquet files are visible. The run must stop with exit
code 3 and a clear message; every visible file must be complete; every token an analyst can
see must already have its sealed lookup entry; and re-running the same command must complete
with exactly the rows of an uninterrupted run.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.hardening.faults import (
    Running,
    assert_visible_output_consistent,
    dataset_rows,
    event_files,
    event_tokens,
    lookup_tokens,
    run_args,
    run_cli,
    visible_files,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.hsm]

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def faulty_module(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to build the fault-injecting PKCS#11 module (Debian: gcc)")
    out = tmp_path_factory.mktemp("faulty-pkcs11") / "faulty_pkcs11.so"
    subprocess.run([cc, "-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-o", str(out), str(HERE / "faulty_pkcs11.c")],
                   check=True, capture_output=True, timeout=120)
    return out


def _revocable(env: dict[str, str], module: Path, trigger: Path) -> dict[str, str]:
    return {**env, "AUDITVEIL_PKCS11_MODULE": str(module), "FAULTY_PKCS11_REAL": env["AUDITVEIL_PKCS11_MODULE"],
            "FAULTY_PKCS11_TRIGGER": str(trigger)}


def _start_faults(env: dict[str, str], tmp: Path, module: Path) -> dict[str, tuple[dict[str, str], int]]:
    pin_file = Path(env["AUDITVEIL_PKCS11_PIN_FILE"])
    no_pin = {k: v for k, v in env.items() if k != "AUDITVEIL_PKCS11_PIN_FILE"}
    empty = tmp / "empty-hsm"
    (empty / "tokens").mkdir(parents=True)
    (empty / "softhsm2.conf").write_text(f"directories.tokendir = {empty / 'tokens'}\nobjectstore.backend = file\n")
    revoked = tmp / "revoked"
    revoked.touch()
    return {
        "wrong PIN": ({**no_pin, "AUDITVEIL_PKCS11_PIN": "wrong-" + pin_file.read_text().strip()[::-1]}, 3),
        "unknown token label": ({**env, "AUDITVEIL_PKCS11_TOKEN_LABEL": "no-such-token"}, 3),
        "PKCS#11 module missing": ({**env, "AUDITVEIL_PKCS11_MODULE": str(tmp / "missing" / "libsofthsm2.so")}, 3),
        "token directory empty": ({**env, "SOFTHSM2_CONF": str(empty / "softhsm2.conf")}, 3),
        "HMAC key missing": ({**env, "AUDITVEIL_PKCS11_HMAC_KEY_LABEL": "no-such-key"}, 3),
        "HSM revoked": (_revocable(env, module, revoked), 3),
        "no PIN configured": (no_pin, 2),
    }


def test_hsm_unavailable_at_start_fails_closed(operator_env: dict[str, str], fault_inputs: tuple[Path, int],
                                               faulty_module: Path, tmp_path: Path) -> None:
    pin = Path(operator_env["AUDITVEIL_PKCS11_PIN_FILE"]).read_text().strip()
    cases = _start_faults(operator_env, tmp_path, faulty_module)
    procs = {}
    for name, (env, _code) in cases.items():  # all at once: each spends its time starting Python
        out, lookup = tmp_path / name / "out", tmp_path / name / "lookup"
        procs[name] = subprocess.Popen(run_args(fault_inputs[0], out, lookup, "--workers", "1"), env=env,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for name, (_env, code) in cases.items():
        stdout, stderr = procs[name].communicate(timeout=180)
        out, lookup = tmp_path / name / "out", tmp_path / name / "lookup"
        assert procs[name].returncode == code, (name, stderr[-2000:])
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert lines and lines[-1].startswith("auditveil: error: "), (name, stderr[-2000:])
        assert "HSM" in lines[-1] or "PIN" in lines[-1], (name, lines[-1])
        assert "Traceback" not in stderr, name
        assert pin not in stderr + stdout
        assert "wrong-" not in stderr + stdout
        assert visible_files(out) == [] and visible_files(lookup) == [], name
        assert not any(out.rglob("*")) and not any(lookup.rglob("*")), f"{name}: something was written"


@pytest.fixture(scope="module")
def revoked_mid_run(operator_env: dict[str, str], fault_inputs: tuple[Path, int], faulty_module: Path,
                    tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Start a run, revoke the HSM once the first Parquet files are visible, wait for the end."""
    tmp = tmp_path_factory.mktemp("revoked-mid-run")
    trigger = tmp / "revoke"
    env = _revocable(operator_env, faulty_module, trigger)
    out, lookup = tmp / "out", tmp / "lookup"
    # One worker process: with several, SoftHSM2's login race (test_hsm_concurrency.py) could fail
    # the run before the revocation does.
    args = run_args(fault_inputs[0], out, lookup, "--workers", "1")
    run = Running(env, args, tmp / "run.log")
    try:
        wait_for(lambda: len(event_files(out)) >= 2, 240, "the first Parquet files")
        trigger.touch()  # the HSM is revoked / unplugged now
        code = run.wait(timeout=300)
    finally:
        if run.proc.poll() is None:
            run.kill()
    return {"code": code, "log": run.output(), "out": out, "lookup": lookup, "env": env, "args": args,
            "trigger": trigger, "rows": dataset_rows(out)}


def test_hsm_revoked_mid_run_fails_closed(revoked_mid_run: dict[str, Any], fault_inputs: tuple[Path, int]) -> None:
    log, out, lookup = revoked_mid_run["log"], revoked_mid_run["out"], revoked_mid_run["lookup"]
    assert revoked_mid_run["code"] == 3, log[-3000:]
    last = log.rstrip().splitlines()[-1]
    # (one worker: Beam's own wording, "the HSM refused or failed an HMAC operation [while running
    # 'Pseudonymise/Sanitise']"; several: "the HSM became unavailable during the run … (fail closed)")
    assert last.startswith("auditveil: error: the HSM "), last
    for marker in ("fault1", "eu-user-", "oidc-v", "@example.eu", "111122223333", "AKIA0"):
        assert marker not in log
    assert 0 < len(revoked_mid_run["rows"]) < fault_inputs[1], "the fault should have hit mid-run"
    assert_visible_output_consistent(out, lookup)


def test_rerun_after_hsm_returns_equals_an_uninterrupted_run(revoked_mid_run: dict[str, Any],
                                                             baseline: tuple[Path, list[str]]) -> None:
    revoked_mid_run["trigger"].unlink()  # the HSM is back
    done = run_cli(revoked_mid_run["env"], revoked_mid_run["args"])
    assert done.returncode == 0, done.stderr[-3000:]
    out = revoked_mid_run["out"]
    assert dataset_rows(out) == baseline[1]  # identical to an uninterrupted run, no duplicates
    assert event_tokens(out) <= lookup_tokens(revoked_mid_run["lookup"])


def test_a_failing_worker_prints_no_traceback(revoked_mid_run: dict[str, Any]) -> None:
    assert "Traceback" not in revoked_mid_run["log"]
