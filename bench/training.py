"""Training a detector under a training-time defence, with a content-addressed model cache."""

from __future__ import annotations

import copy
import dataclasses
import io
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from bench.cache import atomic_write, atomic_write_text, digest, files_digest
from bench.config import TrainingConfig
from bench.versions import package_version

if TYPE_CHECKING:
    from torch import nn

    from bench.data import Dataset
    from bench.registry import Spec


@dataclass(frozen=True)
class ModelMeta:
    """How a model trained and how well it does on clean held-out data (stored beside the weights)."""

    history: list[dict]
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


def _paths(cache_dir: Path, key: str) -> tuple[Path, Path]:
    return cache_dir / "models" / f"{key}.pt", cache_dir / "models" / f"{key}.json"


def read_meta(cache_dir: Path, key: str) -> ModelMeta | None:
    """Metadata of a cached model without loading its weights (None when not cached)."""
    weights, meta = _paths(cache_dir, key)
    if not (weights.is_file() and meta.is_file()):
        return None
    return ModelMeta(**json.loads(meta.read_text()))


def _code_digest() -> str:
    """The trainer and the detector/defence code every entry shares (each entry's own file is
    hashed separately, so adding an entry keeps every other cached model valid)."""
    from defenses import DEFENSES
    from detectors import DETECTORS

    return files_digest([Path(__file__), *DETECTORS.shared_files(), *DEFENSES.shared_files()])


def model_key(dataset_key: str, detector: Spec, defense: Spec, config: TrainingConfig, seed: int) -> str:
    """Content hash of everything that determines a trained model."""
    from defenses import DEFENSES
    from detectors import DETECTORS

    return digest(
        "model",
        dataset_key,
        str(detector),
        DETECTORS.entry(detector.name).source_digest,
        str(defense),
        DEFENSES.entry(defense.name).source_digest,
        dataclasses.asdict(config),
        seed,
        _code_digest(),
        package_version("torch"),
    )


def build_detector(spec: Spec, dataset: Dataset) -> nn.Module:
    """Instantiate a detector for the channels and classes of a dataset."""
    from detectors import create_detector

    return create_detector(
        spec, in_channels=int(dataset.x["train"].shape[1]), num_classes=len(dataset.info["classes"])
    )


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    """Share of correct predictions."""
    from bench.attacks.base import predict

    return float((predict(model, x) == y).mean())


def train_or_load(
    dataset: Dataset,
    detector: Spec,
    defense: Spec,
    config: TrainingConfig,
    seed: int,
    cache_dir: Path,
    log: Callable[[str], None] = lambda _: None,
    key: str | None = None,
) -> TrainedModel:
    """Return the trained model from the cache, or train it and store it atomically.

    ``key``: the key the caller planned with (the runner's ``ModelJob.key``). Keys hash source
    files read when they are computed; recomputing one here would store the model under another
    key than planned if the source tree changed during a long run.
    """
    import torch

    key = key or model_key(dataset.key, detector, defense, config, seed)
    weights, meta_path = _paths(cache_dir, key)
    meta = read_meta(cache_dir, key)
    if meta is not None:
        model = build_detector(detector, dataset)
        model.load_state_dict(torch.load(weights, weights_only=True))
        model.eval()
        return TrainedModel(key, model, meta, from_cache=True)
    model, meta = train(detector, dataset, defense, config, seed, log)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    atomic_write(weights, lambda f: f.write(buffer.getvalue()))
    atomic_write_text(meta_path, json.dumps(dataclasses.asdict(meta), indent=1))  # written last: marks completion
    return TrainedModel(key, model, meta, from_cache=False)


def train(
    detector: Spec,
    dataset: Dataset,
    defense_spec: Spec,
    config: TrainingConfig,
    seed: int,
    log: Callable[[str], None] = lambda _: None,
) -> tuple[nn.Module, ModelMeta]:
    """Train with Adam and a one-cycle schedule; keep the epoch with the best validation accuracy.

    Deterministic on CPU for a fixed seed: initialisation, batch order and augmentation draw
    from torch generators seeded here. Augmentation (random rot90 and horizontal flip of the
    whole batch) preserves the traces of the isotropic manipulations studied here.
    """
    import torch

    from defenses import create_defense
    from detectors import apply_constraints

    torch.manual_seed(seed)  # the detector's initial weights
    model = build_detector(detector, dataset)
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
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=config.epochs * steps_per_epoch)
    history: list[dict] = []
    best_state, best_val = copy.deepcopy(model.state_dict()), -1.0
    start = time.perf_counter()
    for epoch in range(config.epochs):
        model.train()
        order = torch.randperm(len(x_train), generator=generator)
        total_loss = 0.0
        for i in range(0, len(x_train), config.batch_size):
            idx = order[i : i + config.batch_size]
            xb, yb = x_train[idx], y_train[idx]
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
        val = accuracy(model, x_val, y_val)
        history.append({"epoch": epoch + 1, "loss": total_loss / len(x_train), "val_accuracy": val,
                        "seconds": time.perf_counter() - start})  # fmt: skip
        log(f"epoch {epoch + 1}/{config.epochs}: loss {total_loss / len(x_train):.4f}, val accuracy {val:.3f}")
        if val >= best_val:  # ties go to the later, more annealed epoch
            best_val, best_state = val, copy.deepcopy(model.state_dict())
    seconds = time.perf_counter() - start
    model.load_state_dict(best_state)
    model.eval()
    test_x, test_y = dataset.floats("test"), dataset.y["test"]
    parameters = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return model, ModelMeta(history, seconds, best_val, accuracy(model, test_x, test_y), len(test_y), parameters)
