"""Numbers and the thread count: training runs with a fixed intra-op thread count
(bench/run/training.py), so the weights are the same whatever the process was given; cells, probes
and transfer pairs run with the run's count, which is in their keys and in every table's
``threads`` column (attack results can differ between counts: docs/design.md, "Thread count")."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from bench.core.config import DataConfig, TrainingConfig
from bench.inputs.matrix import parse_matrix
from bench.inputs.photos import builtin_source
from bench.outputs.formats import ResultsFolder
from bench.run import execute
from bench.run.execute import Runner, obtain_dataset
from bench.run.plan import make_plan
from bench.run.store import Store
from bench.run.training import TRAINING_THREADS, train
from bench.tasks import TASKS
from defenses import DEFENSES
from detectors import DETECTORS
from tests.tiny import tiny_doc


def _weights_digest(model: object) -> str:
    import torch

    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)  # type: ignore[attr-defined]
    return hashlib.sha256(buffer.getvalue()).hexdigest()


@pytest.mark.slow
def test_training_gives_the_same_weights_with_1_2_and_4_threads(tmp_path: Path) -> None:
    import torch

    config = DataConfig(max_train_locations=300, max_eval_locations=100)
    dataset = obtain_dataset(TASKS.resolve("median3"), builtin_source(), config, 0, Store(tmp_path))
    training = TrainingConfig(epochs=2, max_train_patches=256, batch_size=32)
    before = torch.get_num_threads()
    digests = {}
    try:
        for threads in (1, 2, 4):
            torch.set_num_threads(threads)
            model, meta = train(DETECTORS.resolve("bayar"), dataset, DEFENSES.resolve("none"), training, 0)
            digests[threads] = (_weights_digest(model), meta.test_accuracy)
            assert torch.get_num_threads() == threads  # restored after training
    finally:
        torch.set_num_threads(before)
    assert len(set(digests.values())) == 1, digests


def test_the_training_thread_count_is_fixed_and_recorded() -> None:
    """The constant is in the model keys (its module's fingerprint) and in run.json."""
    import torch

    from bench.run.training import training_threads

    before = torch.get_num_threads()
    with training_threads():
        assert torch.get_num_threads() == TRAINING_THREADS
    assert torch.get_num_threads() == before
    source = Path(__file__).parents[1] / "bench" / "run" / "execute.py"
    assert '"training_threads": TRAINING_THREADS' in source.read_text()


def test_the_thread_count_is_in_the_keys_of_cells_and_probes_not_of_models() -> None:
    matrix, source = parse_matrix(tiny_doc()), builtin_source()
    one, two = make_plan(matrix, source, threads=1), make_plan(matrix, source, threads=2)
    assert [j.key for j in one.models] == [j.key for j in two.models]  # training has TRAINING_THREADS
    assert {c.key for c in one.cells}.isdisjoint(c.key for c in two.cells)
    assert {p.key for p in one.probes}.isdisjoint(p.key for p in two.probes)


def test_a_run_computes_with_its_thread_count_and_records_it(tmp_path: Path) -> None:
    """A runner told 1 thread computes every cell, probe and transfer pair with 1, whatever the
    process has, and writes 1 in the threads column of their tables and in run.json; the models
    table has TRAINING_THREADS."""
    import json

    import pandas as pd
    import torch

    seen: dict[str, list[int]] = {"compute_cell": [], "probe": [], "score_images": []}
    originals = {name: getattr(execute, name) for name in seen}

    def recording(name: str) -> object:
        def wrapper(*args: object, **kwargs: object) -> object:
            seen[name].append(torch.get_num_threads())
            return originals[name](*args, **kwargs)

        return wrapper

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    for name in seen:
        setattr(execute, name, recording(name))
    try:
        runner = Runner(
            parse_matrix(tiny_doc()), store=Store(tmp_path / "cache"), sink=ResultsFolder(tmp_path), threads=1
        )
        result = runner.run()
    finally:
        for name, original in originals.items():
            setattr(execute, name, original)
        torch.set_num_threads(before)
    assert all(counts and set(counts) == {1} for counts in seen.values()), seen
    assert set(result.table["threads"]) == {1} and set(result.samples["threads"]) == {1}
    assert set(result.models["threads"]) == {TRAINING_THREADS}
    assert result.probes is not None and set(result.probes["threads"]) == {1}
    assert result.transfer is not None and set(result.transfer["threads"]) == {1}
    assert set(pd.read_parquet(tmp_path / "matrix.parquet")["threads"]) == {1}
    assert set(pd.read_csv(tmp_path / "models.csv")["threads"]) == {TRAINING_THREADS}
    assert json.loads((tmp_path / "run.json").read_text())["host"]["torch_threads"] == 1


def test_a_dask_task_sets_the_runs_thread_count() -> None:
    """Every task of the Dask executor sets the count of its context (the run's, in the keys),
    whatever its worker process had."""
    import torch

    from bench.run.distributed import Context, _setup

    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(3 - threads)
            _setup(Context(parse_matrix(tiny_doc()), "/nonexistent-cache", "cpu", threads))
            assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(before)
