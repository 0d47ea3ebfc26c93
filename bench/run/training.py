"""Training a detector under a training-time defence (a stage: its fingerprint is in every model key).

A pure function of the detector, the dataset, the defence, the settings and the seed; the run's
store caches the result (bench/run/store.py).
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from bench.core.inference import predict
from defenses import create_defense
from detectors import apply_constraints, create_detector

if TYPE_CHECKING:
    import torch
    from torch import nn

    from bench.core.config import TrainingConfig
    from bench.core.registry import Spec
    from bench.inputs.data import Dataset


# The intra-op thread count of every training. CPU kernels split their reductions (convolution
# backward, batch-norm statistics, matrix products) by the thread count, so weights trained with 1
# and with 2 threads differ in the last bits, then diverge over the epochs. Fixed here, training
# gives the same weights whatever OMP_NUM_THREADS, torch.set_num_threads or the machine's core
# count (more threads than cores only run slower); being in this file, it is part of every model
# key. 2 is the count the committed baseline and reference results were trained with. Attacks on a
# trained model depend on the count too, less (docs/design.md, "Thread count"): a run's cells all
# have the run's count (bench/run/threads.py), and it is in their keys.
TRAINING_THREADS = 2


@contextlib.contextmanager
def training_threads() -> Iterator[None]:
    """Run the block with torch's intra-op thread count set to TRAINING_THREADS, then restore it."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(TRAINING_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass(frozen=True)
class ModelMeta:
    """How a model trained and how well it does on clean held-out data (stored beside the weights)."""

    history: list[dict[str, Any]]
    seconds: float  # training time when it was trained (also reported when served from the cache)
    val_accuracy: float
    test_accuracy: float  # on the whole held-out test split
    test_n: int
    parameters: int  # trainable parameters


@dataclass(frozen=True)
class TrainedModel:
    """A trained detector, its metadata and whether it came from the cache."""

    key: str
    model: nn.Module
    meta: ModelMeta
    from_cache: bool


def build_detector(spec: Spec, dataset: Dataset) -> nn.Module:
    """Instantiate a detector for the channels and classes of a dataset."""
    channels, classes = int(dataset.x["train"].shape[1]), len(dataset.info["classes"])
    model: nn.Module = create_detector(spec, in_channels=channels, num_classes=classes)
    return model


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray, *, device: torch.device | None = None) -> float:
    """Share of correct predictions."""
    return float((predict(model, x, device=device) == y).mean())


def train(
    detector: Spec,
    dataset: Dataset,
    defense_spec: Spec,
    config: TrainingConfig,
    seed: int,
    on_epoch: Callable[[dict[str, Any]], None] = lambda _: None,
    *,
    device: torch.device | None = None,
) -> tuple[nn.Module, ModelMeta]:
    """Train with Adam and a one-cycle schedule; keep the epoch with the best validation accuracy.

    Deterministic on CPU for a fixed seed, on any thread count: initialisation, batch order and
    augmentation draw from torch generators seeded here, and the training runs with
    TRAINING_THREADS intra-op threads. Augmentation (random rot90 and horizontal flip of the
    whole batch) preserves the traces of the isotropic manipulations studied here.

    ``device``: where the model and each batch go (``None``: the CPU); the initial weights, batch
    order and augmentation are drawn on the CPU whatever the device, and the model is returned
    on the CPU.
    """
    with training_threads():
        return _train(detector, dataset, defense_spec, config, seed, on_epoch, device)


def _train(
    detector: Spec,
    dataset: Dataset,
    defense_spec: Spec,
    config: TrainingConfig,
    seed: int,
    on_epoch: Callable[[dict[str, Any]], None],
    device: torch.device | None,
) -> tuple[nn.Module, ModelMeta]:
    import torch

    device = device if device is not None else torch.device("cpu")
    torch.manual_seed(seed)  # the detector's initial weights
    model = build_detector(detector, dataset).to(device)
    generator = torch.Generator().manual_seed(seed)
    defense = create_defense(defense_spec)
    x_train = torch.from_numpy(dataset.floats("train"))
    y_train = torch.from_numpy(dataset.y["train"])
    if 0 < config.max_train_patches < len(x_train):
        pick = torch.randperm(len(x_train), generator=generator)[: config.max_train_patches].sort().values
        x_train, y_train = x_train[pick], y_train[pick]
    x_val, y_val = dataset.floats("val"), dataset.y["val"]
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = (len(x_train) + config.batch_size - 1) // config.batch_size
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=config.epochs * steps_per_epoch
    )
    history: list[dict[str, Any]] = []
    best_state, best_val = copy.deepcopy(model.state_dict()), -1.0
    start = time.perf_counter()
    for epoch in range(config.epochs):
        model.train()
        order = torch.randperm(len(x_train), generator=generator)
        total_loss = 0.0
        for i in range(0, len(x_train), config.batch_size):
            idx = order[i : i + config.batch_size]
            xb, yb = x_train[idx].to(device), y_train[idx].to(device)
            if config.augment:
                turns = int(torch.randint(4, (), generator=generator))
                xb = torch.rot90(xb, turns, dims=(2, 3))
                if bool(torch.randint(2, (), generator=generator)):
                    xb = xb.flip(3)
            loss = defense.loss(model, xb, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            apply_constraints(model)
            total_loss += float(loss.detach()) * len(idx)
        val = accuracy(model, x_val, y_val, device=device)
        history.append(
            {
                "epoch": epoch + 1,
                "loss": total_loss / len(x_train),
                "val_accuracy": val,
                "seconds": time.perf_counter() - start,
            }
        )
        on_epoch(history[-1])  # the caller reports progress: no message text in this stage
        if val >= best_val:  # ties go to the later, more annealed epoch
            best_val, best_state = val, copy.deepcopy(model.state_dict())
    seconds = time.perf_counter() - start
    model.load_state_dict(best_state)
    model.eval()
    test_x, test_y = dataset.floats("test"), dataset.y["test"]
    parameters = sum(p.numel() for p in model.parameters() if p.requires_grad)
    test_accuracy = accuracy(model, test_x, test_y, device=device)
    return model.cpu(), ModelMeta(history, seconds, best_val, test_accuracy, len(test_y), parameters)
