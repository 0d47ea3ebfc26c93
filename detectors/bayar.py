"""Bayar-Stamm MISLnet: constrained convolution + CNN for universal manipulation detection."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from bench.core.registry import at_least, at_most, greater_than
from detectors import DetectorInfo, register_detector

if TYPE_CHECKING:
    from torch import nn


@register_detector(
    "bayar",
    info=DetectorInfo(
        "MISLnet (Bayar-Stamm 2018): constrained 5x5 conv (centre -1, others sum to 1), conv 7x7/2, 5x5, 5x5, 1x1 "
        "with BN, tanh and 3x3/2 pooling, two FC tanh layers; widths x scale",
        reference="Bayar & Stamm, 'Constrained convolutional neural networks: a new approach towards general "
        "purpose image manipulation detection', IEEE TIFS 13(11), 2018",
        channels=(1, 3),
        parameters=24681,
    ),
)
def bayar(
    *,
    filters: Annotated[int, at_least(1), at_most(256)] = 3,
    scale: Annotated[float, greater_than(0.0)] = 0.25,
    truncate: Annotated[float, at_least(0.0)] = 3.0,
    in_channels: int = 1,
    num_classes: int = 2,
) -> nn.Module:
    """MISLnet with channel widths (96, 64, 64, 128, FC 200, 200) multiplied by ``scale``.

    ``truncate`` > 0 inserts a soft truncation of the constrained residuals (8-bit units) before
    conv2; the original MISLnet has none (``truncate=0``).
    """
    from torch import nn

    from detectors._layers import BayarConv2d, Truncate, conv_bn_tanh_pool, scaled

    c2, c3, c4, c5, fc = (scaled(w, scale) for w in (96, 64, 64, 128, 200))
    return nn.Sequential(
        BayarConv2d(in_channels, filters),
        Truncate(truncate),
        *conv_bn_tanh_pool(filters, c2, 7, stride=2),
        *conv_bn_tanh_pool(c2, c3, 5),
        *conv_bn_tanh_pool(c3, c4, 5),
        *conv_bn_tanh_pool(c4, c5, 1, pool="avg"),
        nn.Flatten(),
        nn.Linear(c5, fc),
        nn.Tanh(),
        nn.Linear(fc, fc),
        nn.Tanh(),
        nn.Linear(fc, num_classes),
    )
