"""Shared fixtures: one smoke-profile run per test session (trains two small detectors)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.matrix import Matrix, builtin_matrix_path, load_matrix
from bench.runner import Runner, RunResult


@dataclass
class SmokeRun:
    matrix: Matrix
    result: RunResult
    results_dir: Path
    cache_dir: Path


@pytest.fixture(scope="session")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> SmokeRun:
    """The built-in smoke profile, run once into a session-wide temporary results folder."""
    root = tmp_path_factory.mktemp("smoke")
    matrix = load_matrix(builtin_matrix_path("smoke"))
    result = Runner(matrix, results_dir=root / "results", cache_dir=root / "cache").run()
    return SmokeRun(matrix, result, root / "results", root / "cache")


@pytest.fixture(scope="session")
def smoke_dataset(smoke: SmokeRun):
    """The smoke run's median3 dataset (served from its cache)."""
    from bench.data import build_dataset, builtin_source

    return build_dataset(smoke.matrix.tasks[0], builtin_source(), smoke.matrix.data, smoke.matrix.seed, smoke.cache_dir)


@pytest.fixture(scope="session")
def smoke_models(smoke: SmokeRun, smoke_dataset) -> dict:
    """Trained undefended smoke detectors by detector name (served from the cache)."""
    from bench.training import train_or_load

    out = {}
    for detector in smoke.matrix.detectors:
        trained = train_or_load(smoke_dataset, detector, smoke.matrix.defenses[0], smoke.matrix.training,
                                smoke.matrix.seed, smoke.cache_dir)  # fmt: skip
        assert trained.from_cache
        out[detector.name] = trained
    return out


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ANN001
    """Print each benchmark's ratio to the raw PyTorch baseline measured in the same run."""
    from tests.test_benchmarks import BASELINE, MEDIANS

    if BASELINE not in MEDIANS:
        return
    terminalreporter.section("attack speed relative to raw PyTorch (median, same run)")
    for name, median in MEDIANS.items():
        terminalreporter.write_line(f"{name:12s} {median:8.3f}s  {median / MEDIANS[BASELINE]:5.2f}x")
