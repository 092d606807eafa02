"""The import layers of pyproject.toml (``[tool.importlinter]``): the project keeps
them, and the contract is live: an import that runs up the layers is caught."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(
    not LINT_IMPORTS.exists(), reason="import-linter is not installed (the dev extra)"
)


def _lint(root: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` with ``root``'s config, on ``root/src``'s package."""
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def _copy(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(ROOT / "src" / "dynmultidep", tmp_path / "src" / "dynmultidep", ignore=ignore)
    return tmp_path


def test_the_project_keeps_its_layers():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("where", "statement", "contract"),
    [
        ("ops/_upward.py", "from dynmultidep.models import gate\n", "down the layers"),
        ("evaluation/_upward.py", "import dynmultidep.tasks.module\n", "down the layers"),
        ("tasks/run/_upward.py", "from dynmultidep.tasks import train\n", "tasks: entry"),
    ],
)
def test_an_upward_import_is_caught(tmp_path, where, statement, contract):
    root = _copy(tmp_path)
    (root / "src" / "dynmultidep" / where).write_text(statement)
    result = _lint(root)
    assert result.returncode != 0
    assert "1 broken" in result.stdout
    broken = result.stdout.split("Broken contracts")[1]
    assert contract in broken and "_upward" in broken


def test_a_package_without_a_layer_is_caught(tmp_path):
    root = _copy(tmp_path)
    (root / "src" / "dynmultidep" / "unplaced.py").write_text('"""Nowhere in the layers."""\n')
    result = _lint(root)
    assert result.returncode != 0
    assert "unplaced" in result.stdout
