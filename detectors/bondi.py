"""Bondi et al. (2017) camera-model identification CNN."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from bench.core.registry import greater_than
from detectors import DetectorInfo, register_detector

if TYPE_CHECKING:
    from torch import nn


@register_detector(
    "bondi",
    info=DetectorInfo(
        "Bondi et al. camera-model CNN: conv 4x4 (32), 5x5 (48), 5x5 (64), 5x5 (128) with 2x2 max pooling, "
        "FC 128, FC classes; widths x scale",
        reference="Bondi, Baroffio, Guera, Bestagini, Delp & Tubaro, 'First steps toward camera model "
        "identification with convolutional neural networks', IEEE Signal Processing Letters 24(3), 2017",
        parameters=146122,
    ),
)
def bondi(
    *,
    scale: Annotated[float, greater_than(0.0)] = 0.5,
    in_channels: int = 1,
    num_classes: int = 2,
) -> nn.Module:
    """The Bondi et al. architecture on 64x64 patches (inputs centred to [-1, 1])."""
    from torch import nn

    from detectors._layers import Affine, scaled

    c1, c2, c3, c4, fc = (scaled(w, scale) for w in (32, 48, 64, 128, 128))
    return nn.Sequential(
        Affine(2.0, -1.0),
        nn.Conv2d(in_channels, c1, 4),
        nn.MaxPool2d(2),  # 64 -> 61 -> 30
        nn.Conv2d(c1, c2, 5),
        nn.MaxPool2d(2),  # -> 26 -> 13
        nn.Conv2d(c2, c3, 5),
        nn.MaxPool2d(2),  # -> 9 -> 4
        nn.Conv2d(c3, c4, 5, padding=2),
        nn.ReLU(),  # 4x4 maps: 'same' padding keeps the paper's 5x5 kernel
        nn.Flatten(),
        nn.Linear(16 * c4, fc),
        nn.ReLU(),
        nn.Linear(fc, num_classes),
    )
