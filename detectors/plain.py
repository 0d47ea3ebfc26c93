"""A plain CNN with no forensic front end: the baseline for what the forensic layers buy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from bench.core.registry import at_least, at_most
from detectors import DetectorInfo, register_detector

if TYPE_CHECKING:
    from torch import nn


@register_detector(
    "plain",
    info=DetectorInfo(
        "plain small CNN on the pixels (the same trunk as srm, no forensic front end): the baseline",
        reference="-",
        parameters=60706,
    ),
)
def plain(
    *,
    width: Annotated[int, at_least(1), at_most(256)] = 16,
    in_channels: int = 1,
    num_classes: int = 2,
) -> nn.Module:
    """Four conv-BN-ReLU blocks on the raw image."""
    from detectors._layers import small_cnn

    return small_cnn(in_channels, width, num_classes)
