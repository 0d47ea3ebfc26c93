"""Detector with a fixed SRM high-pass front end."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from bench.core.registry import at_least, at_most
from detectors import DetectorInfo, register_detector

if TYPE_CHECKING:
    from torch import nn


@register_detector(
    "srm",
    info=DetectorInfo(
        "fixed SRM high-pass filters (KV 5x5/12, KB 3x3/4, second-order [1,-2,1]/2), truncation (soft or hard tanh), small CNN",
        reference="Fridrich & Kodovsky, 'Rich models for steganalysis of digital images', IEEE TIFS 7(3), 2012; "
        "Zhou et al., 'Learning rich features for image manipulation detection', CVPR 2018",
        channels=(1, 3),
        parameters=60994,
    ),
)
def srm(
    *,
    hard: bool = False,
    truncate: Annotated[float, at_least(0.0)] = 3.0,
    width: Annotated[int, at_least(1), at_most(256)] = 16,
    in_channels: int = 1,
    num_classes: int = 2,
) -> nn.Module:
    """Three fixed SRM residual filters, truncation (soft tanh, or hard with ``hard=true``), a small CNN."""
    import torch
    from torch import nn

    from detectors._layers import FixedFilters, Truncate, small_cnn

    kv = (
        torch.tensor(
            [[-1, 2, -2, 2, -1], [2, -6, 8, -6, 2], [-2, 8, -12, 8, -2], [2, -6, 8, -6, 2], [-1, 2, -2, 2, -1]],
            dtype=torch.float32,
        )
        / 12.0
    )
    kb = torch.zeros(5, 5)
    kb[1:4, 1:4] = torch.tensor([[-1.0, 2.0, -1.0], [2.0, -4.0, 2.0], [-1.0, 2.0, -1.0]]) / 4.0
    second = torch.zeros(5, 5)
    second[2, 1:4] = torch.tensor([1.0, -2.0, 1.0]) / 2.0
    front = FixedFilters(torch.stack([kv, kb, second]), in_channels)
    return nn.Sequential(front, Truncate(truncate, hard), small_cnn(3, width, num_classes))
