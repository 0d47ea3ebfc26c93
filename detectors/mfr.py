"""Chen et al. (2015) median-filtering-residual CNN."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from bench.core.registry import at_least, at_most
from detectors import DetectorInfo, register_detector

if TYPE_CHECKING:
    from torch import nn


@register_detector(
    "mfr",
    info=DetectorInfo(
        "median filtering residual median3(x) - x (float, differentiable) + slim CNN: conv 5x5, 5x5 with 3x3/2 "
        "max pooling, conv 3x3, global pooling, FC",
        reference="Chen, Ni, Huang & Wang, 'Median filtering forensics based on convolutional neural networks', "
        "IEEE Signal Processing Letters 22(11), 2015",
        parameters=12722,
    ),
)
def mfr(
    *,
    truncate: Annotated[float, at_least(0.0)] = 3.0,
    width: Annotated[int, at_least(1), at_most(256)] = 16,
    in_channels: int = 1,
    num_classes: int = 2,
) -> nn.Module:
    """MFR front end, soft truncation in 8-bit units, slim CNN."""
    from torch import nn

    from detectors._layers import MedianResidual, Truncate

    return nn.Sequential(
        MedianResidual(3),
        Truncate(truncate),
        nn.Conv2d(in_channels, width, 5, padding=2),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(width, width, 5, padding=2),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(width, 2 * width, 3, padding=1),
        nn.BatchNorm2d(2 * width),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(2 * width, 2 * width),
        nn.ReLU(),
        nn.Linear(2 * width, num_classes),
    )
