"""Median smoothing of every input (an input transform)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from bench.core.registry import at_least, at_most
from defenses import TRANSFORM_GRADIENTS, DefenseInfo, register_defense
from defenses._transform import InputTransform

if TYPE_CHECKING:
    import torch


class MedianSmooth(InputTransform):
    """Median filter over ``size`` x ``size`` windows (reflect padding, as scipy / ART's SpatialSmoothing).

    The median routes the gradient to the selected pixel, a true sub-gradient: the adaptive
    attacker uses it (``exact``) rather than BPDA's identity.
    """

    def apply(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        from torch.nn import functional as F

        k = self.params["size"]
        n, c, h, w = x.shape
        padded = F.pad(x, (k // 2, (k - 1) // 2, k // 2, (k - 1) // 2), mode="reflect")
        windows = F.unfold(padded, k).reshape(n, c, k * k, h * w)
        return windows.median(dim=2).values.reshape(n, c, h, w)


@register_defense(
    "median-smooth",
    info=DefenseInfo(
        "input transform (inference time, on the undefended detector): median filter; attacked obliviously, "
        "with the exact sub-gradient and with BPDA",
        reference="Xu, Evans & Qi, NDSS 2018 (feature squeezing); ART SpatialSmoothing",
        kind="transform",
        gradients=TRANSFORM_GRADIENTS,
        adaptive="exact",
    ),
)
def median_smooth(*, size: Annotated[int, at_least(2), at_most(31)] = 3) -> InputTransform:
    """Median smoothing of every input."""
    return MedianSmooth(size=size)
