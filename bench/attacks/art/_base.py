"""What every ART adapter shares: the detector wrapped as an ART ``PyTorchClassifier``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from bench.attacks.base import Attack

if TYPE_CHECKING:
    import torch
    from torch import nn

BATCH_SIZE = 256


class ArtAttack(Attack):
    """Base of ART adapters: wraps the detector as an ART ``PyTorchClassifier``."""

    library = "art"

    def prepare(
        self, model: nn.Module, input_shape: tuple[int, ...], num_classes: int, *, device: torch.device | None = None
    ) -> Any:
        from art.estimators.classification import PyTorchClassifier
        from torch import nn

        return PyTorchClassifier(
            model=model,
            loss=nn.CrossEntropyLoss(),
            input_shape=input_shape,
            nb_classes=num_classes,
            clip_values=(0.0, 1.0),
            preprocessing=None,  # ART's default (0, 1) standardisation is an identity pass over every batch
            device_type=art_device_type(device),
        )


def art_device_type(device: torch.device | None) -> str:
    """ART's ``device_type`` for a device: "gpu" for a CUDA device, which is made torch's current
    CUDA device (ART runs on ``cuda:<current device>``), else "cpu"."""
    if device is None or device.type != "cuda":
        return "cpu"
    import torch

    if device.index is not None and device.index != torch.cuda.current_device():
        torch.cuda.set_device(device)
    return "gpu"


def art_norm(norm: str) -> float:
    """ART's ``norm`` argument for one of our norms."""
    return {"linf": np.inf, "l2": 2}[norm]
