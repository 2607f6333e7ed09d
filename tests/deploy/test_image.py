"""Static checks of deploy/image/Dockerfile and the scripts it ships (no container engine here).

The image must build from pinned bases, run as a non-root user, take the PKCS#11 module as
configuration, and download nothing when a container runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IMAGE = ROOT / "deploy" / "image"
DOCKERFILE = IMAGE / "Dockerfile"
FETCHERS = re.compile(
    r"\b(curl|wget|urlopen|urlretrieve|requests\.get|pip3? install|apt-get|mvn|go install)\b"
)


@dataclass
class Stage:
    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)


def _instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def _stages() -> tuple[dict[str, str], list[Stage]]:
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for word, rest in _instructions(DOCKERFILE.read_text(encoding="utf-8")):
        if word == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
        elif word == "FROM":
            parts = rest.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], parts[0])
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else ""
            stages.append(Stage(base, name))
        elif stages:
            stages[-1].instructions.append((word, rest))
    return args, stages


def test_every_base_image_is_pinned_to_a_version() -> None:
    _, stages = _stages()
    names = {s.name for s in stages}
    assert len(stages) >= 4
    for stage in stages:
        if stage.base in names:
            continue  # built on an earlier stage of this file
        image, _, digest = stage.base.partition("@")
        assert ":" in image.rsplit("/", 1)[-1], f"base {stage.base} has no tag"
        tag = image.rsplit(":", 1)[1]
        assert tag != "latest", f"base {stage.base} is :latest"
        assert re.match(r"^\d+\.\d+\.\d+", tag), f"base {stage.base} is not pinned to an exact version"
        assert not digest or re.fullmatch(r"sha256:[0-9a-f]{64}", digest)


def test_final_images_run_as_a_non_root_user() -> None:
    _, stages = _stages()
    finals = {s.name: s for s in stages if s.name in ("service", "flink")}
    assert set(finals) == {"service", "flink"}
    for name, stage in finals.items():
        users = [rest for word, rest in stage.instructions if word == "USER"]
        assert users, f"stage {name} sets no USER"
        uid = users[-1].split(":")[0]
        assert uid.isdigit() and int(uid) > 0, f"stage {name} ends as user {users[-1]}"


def test_nothing_is_downloaded_when_a_container_runs() -> None:
    _, stages = _stages()
    for stage in stages:
        for word, rest in stage.instructions:
            if word in ("ENTRYPOINT", "CMD"):
                assert not FETCHERS.search(rest), f"{word} of stage {stage.name} fetches something: {rest}"
            if word == "ADD":
                assert "://" not in rest, (
                    "ADD from a URL skips checksum verification; fetch with a registry client"
                )
            if word == "RUN":
                assert not re.search(r"\b(curl|wget)\b", rest), (
                    "RUN downloads with curl/wget instead of a registry client"
                )
    for script in (IMAGE / "flink-driver.sh", IMAGE / "beam_worker_pool.py"):
        code = "\n".join(
            line
            for line in script.read_text(encoding="utf-8").splitlines()
            if not line.lstrip().startswith("#")
        )
        assert not FETCHERS.search(code.split('"""', 2)[-1]), f"{script.name} fetches something at run time"


def test_pkcs11_module_is_configuration_and_softhsm_is_the_default() -> None:
    _, stages = _stages()
    service = next(s for s in stages if s.name == "service")
    env = " ".join(rest for word, rest in service.instructions if word == "ENV")
    assert "AUDITVEIL_PKCS11_MODULE=/usr/lib/softhsm/libsofthsm2.so" in env
    assert "AUDITVEIL_PKCS11_PIN" not in env, "no PIN (nor PIN file) belongs in the image"
    runs = " ".join(rest for word, rest in service.instructions if word == "RUN")
    assert "softhsm2" in runs and "mkdir -p /opt/hsm" in runs


def test_copied_sources_exist_and_the_beam_pieces_are_shipped() -> None:
    _, stages = _stages()
    for stage in stages:
        for word, rest in stage.instructions:
            if word != "COPY" or "--from=" in rest:
                continue
            sources = [p for p in rest.split() if not p.startswith("--")][:-1]
            for src in sources:
                assert (ROOT / src).exists(), f"COPY source {src} does not exist in the repository"
    flink = next(s for s in stages if s.name == "flink")
    text = " ".join(rest for _, rest in flink.instructions)
    assert "beam-job-server.jar" in text
    jar_uri = "local:///opt/flink/usrlib/beam-job-server.jar"
    manifest = (ROOT / "deploy" / "k8s" / "base" / "flink" / "flinkdeployment.yaml").read_text(
        encoding="utf-8"
    )
    assert f"jarURI: {jar_uri}" in manifest


@pytest.mark.parametrize("target,port", [("service", "8443")])
def test_service_port_matches_the_deployment(target: str, port: str) -> None:
    _, stages = _stages()
    stage = next(s for s in stages if s.name == target)
    assert any(word == "EXPOSE" and port in rest.split() for word, rest in stage.instructions)
    deployment = (ROOT / "deploy" / "k8s" / "base" / "reid" / "deployment.yaml").read_text(encoding="utf-8")
    assert f"containerPort: {port}" in deployment


def test_python_in_the_image_satisfies_the_project() -> None:
    args, _ = _stages()
    version = re.match(r"python:(\d+)\.(\d+)\.", args["PYTHON_IMAGE"])
    assert version, "the Python base image must name an exact Python version"
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    need = re.search(r'requires-python = ">=(\d+)\.(\d+)"', pyproject)
    assert need
    assert (int(version.group(1)), int(version.group(2))) >= (int(need.group(1)), int(need.group(2)))
