"""Shared fixtures: one smoke-profile run per test session (trains two small detectors).

Tests that use these fixtures (or train, or run a matrix) are marked ``slow``; the quick tier,
``python -m pytest -m "not slow"``, trains nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bench.inputs.matrix import Matrix, builtin_matrix_path, load_matrix
from bench.run.execute import RunResult


@dataclass
class SmokeRun:
    matrix: Matrix
    result: RunResult
    results_dir: Path
    cache_dir: Path


@pytest.fixture(scope="session")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> SmokeRun:
    """The built-in smoke profile, run once into a session-wide temporary results folder."""
    from bench.api import run

    root = tmp_path_factory.mktemp("smoke")
    matrix = load_matrix(builtin_matrix_path("smoke"))
    result = run(matrix, results_dir=root / "results", cache_dir=root / "cache")
    return SmokeRun(matrix, result, root / "results", root / "cache")


@pytest.fixture(scope="session")
def smoke_dataset(smoke: SmokeRun) -> Any:
    """The smoke run's median3 dataset (served from its cache)."""
    from bench.run.plan import plan_models
    from bench.run.store import Store

    job = plan_models(smoke.matrix, _source())[0]
    dataset = Store(smoke.cache_dir).dataset(job.dataset_key)
    assert dataset is not None
    return dataset


@pytest.fixture(scope="session")
def smoke_models(smoke: SmokeRun, smoke_dataset: Any) -> dict[str, Any]:
    """Trained undefended smoke detectors by detector name (served from the cache)."""
    import torch

    from bench.run.execute import obtain_model
    from bench.run.plan import plan_models
    from bench.run.store import Store

    out = {}
    for job in plan_models(smoke.matrix, _source()):
        trained = obtain_model(job, smoke_dataset, smoke.matrix, Store(smoke.cache_dir), device=torch.device("cpu"))
        assert trained.from_cache
        out[job.detector.name] = trained
    return out


def _source() -> Any:
    from bench.inputs.photos import builtin_source

    return builtin_source()


# fixtures that train, run a matrix or build every task's dataset: the tests that use them are slow
SLOW_FIXTURES = {"smoke", "smoke_dataset", "smoke_models", "zoo_datasets"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test that uses a slow fixture is marked slow."""
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Print each benchmark's ratio to its group's baseline (the hand-written PyTorch code)
    measured in the same run."""
    from tests.test_benchmarks import BASELINES, MEDIANS

    if not MEDIANS:
        return
    terminalreporter.section("attack speed relative to hand-written PyTorch (median, same run)")
    for group, medians in MEDIANS.items():
        terminalreporter.write_line(group)
        baseline = next((medians[b] for b in BASELINES if b in medians), None)
        if baseline is None:
            continue
        for name, median in medians.items():
            terminalreporter.write_line(f"  {name:12s} {median:8.3f}s  {median / baseline:5.2f}x")
