"""Bit-depth reduction of every input (an input transform)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from bench.core.registry import at_least, at_most
from defenses import TRANSFORM_GRADIENTS, DefenseInfo, register_defense
from defenses._transform import InputTransform

if TYPE_CHECKING:
    import torch


class BitDepth(InputTransform):
    """Bit-depth reduction to ``bits`` per channel (ART's FeatureSqueezing); rounding has zero gradient."""

    def apply(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        import torch

        levels = 2 ** int(self.params["bits"]) - 1
        squeezed: torch.Tensor = torch.round(x * levels) / levels  # ART FeatureSqueezing's formula on [0, 1]
        return squeezed


@register_defense(
    "bit-depth",
    info=DefenseInfo(
        "input transform (inference time, on the undefended detector): bit-depth reduction; attacked "
        "obliviously, with the exact (zero) gradient and with BPDA",
        reference="Xu, Evans & Qi, NDSS 2018; ART FeatureSqueezing",
        kind="transform",
        gradients=TRANSFORM_GRADIENTS,
        adaptive="bpda",
    ),
)
def bit_depth(*, bits: Annotated[int, at_least(1), at_most(8)] = 6) -> InputTransform:
    """Bit-depth reduction of every input."""
    return BitDepth(bits=bits)
