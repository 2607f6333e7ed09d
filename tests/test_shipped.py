from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from pipeline import __version__, shipped
from pipeline.errors import ConfigError
from pipeline.sanitise.policy import load_policies

REPO = Path(__file__).resolve().parents[1]


def test_a_source_checkout_uses_its_own_schemas_folder() -> None:
    assert shipped.schemas_dir() == REPO / "schemas"


def test_an_installed_copy_is_found_under_the_prefix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    installed = tmp_path / "share" / "auditveil" / "schemas"
    shutil.copytree(REPO / "schemas", installed)
    monkeypatch.setattr(shipped, "_SOURCE_TREE", tmp_path / "no-source-tree")
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    assert shipped.schemas_dir() == installed
    assert set(load_policies()) == {"cloudtrail", "vault"}  # the default policies load from there


def test_no_schemas_anywhere_is_a_configuration_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shipped, "_SOURCE_TREE", tmp_path / "no-source-tree")
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    monkeypatch.setattr(sys, "base_prefix", str(tmp_path))
    with pytest.raises(ConfigError, match=r"pipeline\.policy_dir"):
        shipped.schemas_dir()


def test_the_wheel_ships_every_schemas_file(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for name in ("pipeline", "schemas"):
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "dist"), str(src)], check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("auditveil-*.whl")
    prefix = f"auditveil-{__version__}.data/data/share/auditveil/schemas/"
    shipped_files = {n[len(prefix):] for n in zipfile.ZipFile(wheel).namelist() if n.startswith(prefix)}
    expected = {str(p.relative_to(REPO / "schemas")) for p in (REPO / "schemas").rglob("*") if p.is_file()}
    assert expected and shipped_files == expected
