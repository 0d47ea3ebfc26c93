"""What every ART adapter shares: the detector wrapped as an ART ``PyTorchClassifier``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from bench.attacks.base import Attack

if TYPE_CHECKING:
    from torch import nn

BATCH_SIZE = 256


class ArtAttack(Attack):
    """Base of ART adapters: wraps the detector as an ART ``PyTorchClassifier``."""

    library = "art"

    def prepare(self, model: nn.Module, input_shape: tuple[int, ...], num_classes: int) -> Any:
        from art.estimators.classification import PyTorchClassifier
        from torch import nn

        return PyTorchClassifier(
            model=model,
            loss=nn.CrossEntropyLoss(),
            input_shape=input_shape,
            nb_classes=num_classes,
            clip_values=(0.0, 1.0),
            device_type="cpu",
        )


def art_norm(norm: str) -> float:
    """ART's ``norm`` argument for one of our norms."""
    return {"linf": np.inf, "l2": 2}[norm]
