"""The worker is an independent microservice: the import contracts in pyproject.toml hold,
and they would catch a forbidden import (proved on a copy of the worker with one added)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
SOURCE_ROOTS = ("api", "operator", "worker", "devstack")


def lint_imports(roots: list[Path]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(root) for root in roots)}
    return subprocess.run(
        [LINT_IMPORTS, "--config", str(REPO / "pyproject.toml"), "--no-cache"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )


def test_import_contracts_hold() -> None:
    result = lint_imports([REPO / root for root in SOURCE_ROOTS])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_worker_importing_the_api_breaks_the_contract(tmp_path: Path) -> None:
    worker = tmp_path / "worker"
    shutil.copytree(REPO / "worker", worker, ignore=shutil.ignore_patterns("__pycache__"))
    (worker / "genvid_worker" / "shortcut.py").write_text("import genvid_api\n")
    roots = [worker, *(REPO / root for root in SOURCE_ROOTS if root != "worker")]
    result = lint_imports(roots)
    assert result.returncode != 0
    assert "The worker is an independent microservice BROKEN" in result.stdout
    assert "genvid_worker.shortcut -> genvid_api" in result.stdout


def test_no_package_shadows_the_standard_library() -> None:
    assert not (REPO / "operator" / "__init__.py").exists()
    stdlib = set(sys.stdlib_module_names)
    packages = [p.name for root in SOURCE_ROOTS for p in (REPO / root).iterdir() if p.is_dir()]
    assert not stdlib.intersection(packages)
