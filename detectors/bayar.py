"""Bayar-Stamm constrained-convolution detector."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from bench.registry import at_least
from detectors import DetectorInfo, register_detector

if TYPE_CHECKING:
    from torch import nn


@register_detector(
    "bayar",
    info=DetectorInfo(
        "Bayar-Stamm constrained 5x5 convolution (centre -1, others sum to 1) + truncation + small CNN",
        reference="Bayar & Stamm, 'Constrained convolutional neural networks: a new approach towards "
        "general purpose image manipulation detection', IEEE TIFS 13(11), 2018",
        channels=(1, 3),
    ),
)
def bayar(
    *,
    filters: Annotated[int, at_least(1)] = 3,
    truncate: Annotated[float, at_least(0.0)] = 3.0,
    width: Annotated[int, at_least(1)] = 16,
    in_channels: int = 1,
    num_classes: int = 2,
) -> nn.Module:
    """Constrained residual front end (learned), soft truncation, then a small CNN."""
    from torch import nn

    from detectors.layers import BayarConv2d, Truncate, small_cnn

    return nn.Sequential(BayarConv2d(in_channels, filters), Truncate(truncate), small_cnn(filters, width, num_classes))
