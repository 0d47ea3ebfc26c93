"""Evaluating a network trained elsewhere (a stage: its fingerprint is in the model keys of networks).

The counterpart of bench/run/training.py for the ``torchscript`` and ``state-dict`` detector
entries (detectors/_networks.py): nothing is trained; the network is loaded from its file and
its accuracy measured on the task's validation and whole test split, so that its models row
reads like a trained detector's (``trained`` = false, no epochs).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from bench.run.training import ModelMeta, accuracy, build_detector
from detectors._networks import network_digest

if TYPE_CHECKING:
    import torch
    from torch import nn

    from bench.core.registry import Spec
    from bench.inputs.data import Dataset


def load_network(
    detector: Spec, dataset: Dataset, network: str, *, device: torch.device | None = None
) -> tuple[nn.Module, ModelMeta]:
    """The network of a ``torchscript`` / ``state-dict`` entry, loaded for the dataset's channels
    and classes, with its clean accuracy on the validation and the whole test split (measured on
    ``device``; the model is returned on the CPU, in eval mode).

    ``network``: the digest the run was planned with (its key holds it); a file changed since
    then raises, so that no result is stored under the key of other bytes.
    """
    start = time.perf_counter()
    model = build_detector(detector, dataset).eval()
    if network_digest(detector) != network:
        raise ValueError(f"{detector}: the file changed since the run was planned; run again")
    if device is not None:
        model = model.to(device)
    val_accuracy = accuracy(model, dataset.floats("val"), dataset.y["val"], device=device)
    test_x, test_y = dataset.floats("test"), dataset.y["test"]
    test_accuracy = accuracy(model, test_x, test_y, device=device)
    parameters = sum(p.numel() for p in model.parameters())
    seconds = time.perf_counter() - start
    return model.cpu(), ModelMeta([], seconds, val_accuracy, test_accuracy, len(test_y), parameters)
