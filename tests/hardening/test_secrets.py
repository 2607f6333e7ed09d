"""Access and secrets: the HSM PIN only from the environment or an owner-only file, never from a
command-line argument (visible in ``ps``) or the configuration file; secrets never printed."""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.cli import build_parser
from pipeline.config import Secret, Settings, load_settings, read_secret_file
from pipeline.errors import ConfigError
from tests.hardening.faults import Running, run_args, run_cli, wait_for

SECRETISH = re.compile(r"pin|pass(word|phrase)?\b|secret|api[-_]?key|credential|sasl", re.IGNORECASE)


def _options(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[str, str, str]]:
    """(command path, option string, destination) of every option of every command."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options(sub, (*path, name))
        else:
            for opt in action.option_strings or [""]:  # "" for a positional argument
                yield " ".join(path), opt, action.dest


def test_no_command_line_option_takes_a_secret() -> None:
    options = list(_options(build_parser()))
    assert len(options) > 40  # every command group was walked
    offending = [f"{cmd} {opt}" for cmd, opt, dest in options if SECRETISH.search(opt) or SECRETISH.search(dest)]
    assert offending == []
    # Positional arguments, too: none of them is a secret either.
    assert [d for _c, opt, d in options if not opt] and not [
        cmd for cmd, opt, dest in options if not opt and SECRETISH.search(dest)]


@pytest.mark.parametrize("flag", ["--pin", "--pkcs11-pin", "--password", "--pin-file"])
def test_run_refuses_a_pin_flag(flag: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITVEIL_")}
    done = run_cli(env, run_args(tmp_path, tmp_path / "o", tmp_path / "l", flag, "123456"), timeout=120)
    assert done.returncode == 2 and "unrecognized arguments" in done.stderr


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644, 0o620])
def test_a_pin_file_readable_by_others_is_refused(mode: int, tmp_path: Path) -> None:
    pin = tmp_path / "pin"
    pin.write_text("s3cr3t-pin-value\n")
    pin.chmod(mode)
    with pytest.raises(ConfigError, match="chmod 600") as err:
        read_secret_file(str(pin), "HSM PIN")
    assert "s3cr3t" not in str(err.value)


def test_a_pin_file_readable_by_others_is_refused_by_the_cli(tmp_path: Path, cli_env: dict[str, str]) -> None:
    pin = tmp_path / "pin"
    pin.write_text(Path(cli_env["AUDITVEIL_PKCS11_PIN_FILE"]).read_text())
    pin.chmod(0o640)
    env = {**cli_env, "AUDITVEIL_PKCS11_PIN_FILE": str(pin)}
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "x.jsonl").write_text('{"eventName": "Decrypt", "eventID": "x"}\n')
    done = run_cli(env, run_args(tmp_path / "in", tmp_path / "out", tmp_path / "lookup", "--workers", "1"),
                   timeout=180)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "readable by group or others" in done.stderr
    assert pin.read_text().strip() not in done.stderr + done.stdout
    for where in (tmp_path / "out", tmp_path / "lookup"):  # (the writability probe may leave the folder)
        assert not where.exists() or not any(where.rglob("*"))


def test_an_owner_only_pin_file_is_accepted(tmp_path: Path) -> None:
    pin = tmp_path / "pin"
    pin.write_text("s3cr3t-pin-value\n")
    pin.chmod(0o600)
    assert read_secret_file(str(pin), "HSM PIN").reveal() == "s3cr3t-pin-value"
    pin.chmod(0o400)
    assert read_secret_file(str(pin), "HSM PIN").reveal() == "s3cr3t-pin-value"


def _secret_fields() -> list[tuple[str, str]]:
    out = []
    for sec in dataclasses.fields(Settings):
        hints = typing.get_type_hints(typing.get_type_hints(Settings)[sec.name])
        out += [(sec.name, name) for name, t in hints.items() if Secret in typing.get_args(t) or t is Secret]
    return out


def test_secrets_are_refused_in_the_configuration_file(tmp_path: Path) -> None:
    fields = _secret_fields()
    assert ("pkcs11", "pin") in fields and len(fields) >= 3
    for section, name in fields:
        cfg = tmp_path / f"{section}-{name}.toml"
        cfg.write_text(f'[{section}]\n{name} = "s3cr3t-in-file"\n')
        with pytest.raises(ConfigError) as err:
            load_settings(str(cfg), env={})
        assert "s3cr3t" not in str(err.value)


def test_config_dumps_redact_every_secret() -> None:
    fields = _secret_fields()
    env = {f"AUDITVEIL_{s}_{n}".upper(): f"s3cr3t-{s}-{n}" for s, n in fields}
    settings = load_settings(None, env=env)
    dump = settings.redacted()
    for section, name in fields:
        assert dump[section][name] == "***"
        assert getattr(settings, section).__getattribute__(name).reveal() == f"s3cr3t-{section}-{name}"
    for text in (repr(settings), str(settings), str(dump), repr(dump)):
        assert "s3cr3t" not in text
    # Pickled for Beam workers, still never printed.
    import pickle

    assert "s3cr3t" not in repr(pickle.loads(pickle.dumps(settings)))  # noqa: S301 - our own bytes


@pytest.mark.e2e
@pytest.mark.hsm
def test_no_process_of_a_run_has_the_pin_on_its_command_line(
        operator_env: dict[str, str], fault_inputs: tuple[Path, int], tmp_path: Path) -> None:
    """What ``ps`` shows of the CLI and every Beam worker it starts carries no PIN."""
    pin = Path(operator_env["AUDITVEIL_PKCS11_PIN_FILE"]).read_text().strip()
    out = tmp_path / "out"
    run = Running(operator_env, run_args(fault_inputs[0], out, tmp_path / "lookup", "--workers", "2"),
                  tmp_path / "run.log")
    seen: dict[int, str] = {}
    try:
        def look() -> bool:
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit():
                    try:
                        if os.getpgid(int(entry.name)) != run.proc.pid:
                            continue
                        seen[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                    except (OSError, ProcessLookupError):
                        continue
            # (workers exist even if SoftHSM2's login race of test_hsm_concurrency.py fails them)
            return len(seen) >= 3 or run.proc.poll() is not None
        wait_for(look, 240, "the run's worker processes", poll=0.2)
    finally:
        run.kill()
    assert len(seen) >= 3  # the CLI and two workers
    for cmdline in seen.values():
        assert pin not in cmdline
