"""A deliberately gradient-masked detector, registered only in the tests (bench/run/flags.py must catch it).

Three forms of masking (``form``), each leaving the detector's predictions - and so its true
robustness - those of the unmasked twin:

* ``round`` (the default): the input is rounded to 8-bit levels with ``torch.round``, whose
  gradient is zero everywhere; every gradient attack sees a flat loss, while black-box attacks
  and the detector's own accuracy are untouched (test patches already lie on the 8-bit grid).
* ``scale``: the logits are multiplied by 10^4. The softmax saturates and the cross-entropy
  gradient - the loss of the ART and Foolbox attacks - underflows to exactly 0, while the margin
  and every prediction are those of the twin, scaled.
* ``noise``: a layer that is the identity forward and flips the sign of each input-gradient
  component at random backward (a stochastic layer): the gradient is noise.

With ``mask=false`` it is the same detector without any of them: the clean twin on which no flag
may fire. To train in a second on the smoke data it is a hand-set median-filtering detector: the
mean absolute truncated median residual (Chen et al. 2015) against a threshold, through a linear
head initialised at that rule (about 90% test accuracy on median3 before any training step).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from torch import nn

NAME = "test-masked"
SCALE = 1e4  # form=scale: the logits' factor


def masked_detector(
    *,
    mask: bool = True,
    form: Literal["round", "scale", "noise"] = "round",
    in_channels: int = 1,
    num_classes: int = 2,
) -> nn.Module:
    """The hand-set detector, its gradient masked in the given ``form`` when ``mask``."""
    import torch
    from torch import nn

    from detectors._layers import MedianResidual, Truncate

    class Round8(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.round(x * 255.0) / 255.0  # d round / dx = 0: the gradient is masked

    class FlipSigns(torch.autograd.Function):
        @staticmethod
        def forward(ctx: object, x: torch.Tensor) -> torch.Tensor:
            return x.view_as(x)

        @staticmethod
        def backward(ctx: object, grad: torch.Tensor) -> torch.Tensor:
            signs = torch.randint(0, 2, grad.shape, dtype=grad.dtype).to(grad.device) * 2 - 1
            return grad * signs  # each component's sign a coin toss: the gradient is noise

    class Noisy(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return FlipSigns.apply(x)  # type: ignore[no-any-return]

    class Scale(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * SCALE

    class MeanAbs(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.abs().mean(dim=(1, 2, 3))[:, None]

    head = nn.Linear(1, num_classes)  # class 0 (pristine) above the threshold, the others below
    scale, threshold = 4.0, 1.0  # the residual's mean size in 8-bit units, truncated at 3 levels
    with torch.no_grad():
        head.weight.fill_(-scale)
        head.bias.fill_(scale * threshold)
        head.weight[0], head.bias[0] = scale, -scale * threshold
    first: list[nn.Module] = [Round8()] if mask and form == "round" else [Noisy()] if mask and form == "noise" else []
    last: list[nn.Module] = [Scale()] if mask and form == "scale" else []
    return nn.Sequential(*first, MedianResidual(3), Truncate(3.0), MeanAbs(), head, *last)


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
