"""A deliberately gradient-masked detector, registered only in the tests (bench/run/flags.py must catch it).

``test-masked[mask=true]`` rounds its input to 8-bit levels with ``torch.round``, whose gradient
is zero everywhere: every gradient attack sees a flat loss, while black-box attacks and the
detector's own accuracy are untouched (test patches already lie on the 8-bit grid). With
``mask=false`` it is the same detector without the rounding: the clean twin on which no flag may
fire. To train in a second on the smoke data it is a hand-set median-filtering detector: the mean
absolute truncated median residual (Chen et al. 2015) against a threshold, through a linear head
initialised at that rule (about 90% test accuracy on median3 before any training step).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

NAME = "test-masked"


def masked_detector(*, mask: bool = True, in_channels: int = 1, num_classes: int = 2) -> nn.Module:
    """The hand-set detector, its input rounded to 8-bit levels (zero gradient) when ``mask``."""
    import torch
    from torch import nn

    from detectors._layers import MedianResidual, Truncate

    class Round8(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.round(x * 255.0) / 255.0  # d round / dx = 0: the gradient is masked

    class MeanAbs(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.abs().mean(dim=(1, 2, 3))[:, None]

    head = nn.Linear(1, num_classes)  # class 0 (pristine) above the threshold, the others below
    scale, threshold = 4.0, 1.0  # the residual's mean size in 8-bit units, truncated at 3 levels
    with torch.no_grad():
        head.weight.fill_(-scale)
        head.bias.fill_(scale * threshold)
        head.weight[0], head.bias[0] = scale, -scale * threshold
    layers: list[nn.Module] = [Round8()] if mask else []
    return nn.Sequential(*layers, MedianResidual(3), Truncate(3.0), MeanAbs(), head)


@contextmanager
def registered() -> Iterator[str]:
    """Register ``test-masked`` in the detector registry for the duration of the block."""
    from detectors import DETECTORS, DetectorInfo

    DETECTORS.register(NAME, info=DetectorInfo("gradient-masked test detector (tests only)", reference="-"))(
        masked_detector
    )
    try:
        yield NAME
    finally:
        DETECTORS.unregister(NAME)
