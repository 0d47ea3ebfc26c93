"""Numbers that do not depend on the thread count: training runs with a fixed intra-op thread
count (bench/run/training.py), so the weights are the same whatever the process was given."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from bench.core.config import DataConfig, TrainingConfig
from bench.inputs.photos import builtin_source
from bench.run.execute import obtain_dataset
from bench.run.store import Store
from bench.run.training import TRAINING_THREADS, train
from bench.tasks import TASKS
from defenses import DEFENSES
from detectors import DETECTORS


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
