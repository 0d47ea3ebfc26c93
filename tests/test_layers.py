"""The layer contract (pyproject.toml, [tool.importlinter]): it holds, and it fails on a planted
circular import and on an import against the layers."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    """import-linter on the packages under ``root`` with the project's own contracts."""
    env = {"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin", "HOME": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(REPO / "pyproject.toml"), "--no-cache", "--no-logo"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _copy(tmp_path: Path) -> Path:
    for package in ("bench", "detectors", "defenses"):
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_the_layer_contract_holds() -> None:
    proc = _lint(REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "4 kept, 0 broken" in proc.stdout


@pytest.mark.parametrize(
    ("relative", "planted", "broken"),
    [
        # a circle between two modules of one package (plan <-> execute)
        ("bench/run/plan.py", "from bench.run import execute  # noqa: F401\n", "no import cycle"),
        # the run drawing a figure: an import against the layers (run -> outputs)
        ("bench/run/execute.py", "from bench.outputs import figures  # noqa: F401\n", "layers"),
        # a family reaching up into the run (attacks -> run)
        ("bench/attacks/base.py", "import bench.run.cells  # noqa: F401\n", "layers"),
        # two siblings of one layer depending on each other (detectors -> defenses)
        ("detectors/__init__.py", "import defenses  # noqa: F401\n", "layers"),
        # the outputs reading the registries instead of the files (outputs -> defenses)
        ("bench/outputs/pages.py", "import defenses  # noqa: F401\n", "outputs read only the on-disk formats"),
        # a stage reaching into the cache (cells -> store): its numbers would depend on what is stored
        ("bench/run/cells.py", "import bench.run.store  # noqa: F401\n", "stages compute numbers only"),
    ],
    ids=[
        "cycle",
        "run-draws-figures",
        "family-imports-run",
        "sibling-families",
        "outputs-import-registry",
        "stage-reads-store",
    ],
)
def test_the_contract_fails_on_a_planted_violation(tmp_path: Path, relative: str, planted: str, broken: str) -> None:
    root = _copy(tmp_path)
    path = root / relative
    path.write_text(path.read_text() + planted)
    proc = _lint(root)
    assert proc.returncode != 0
    assert f"{broken}" in proc.stdout and "BROKEN" in proc.stdout, proc.stdout[-3000:]
