"""JPEG re-compression of every input (an input transform)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import numpy as np

from bench.core.registry import at_least, at_most
from defenses import TRANSFORM_GRADIENTS, DefenseInfo, register_defense
from defenses._transform import InputTransform

if TYPE_CHECKING:
    import torch


class Jpeg(InputTransform):
    """JPEG re-compression at ``quality`` (ART's JpegCompression, PIL); no gradient flows through it."""

    def apply(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        import torch
        from art.defences.preprocessor import JpegCompression

        jpeg = JpegCompression(clip_values=(0.0, 1.0), quality=self.params["quality"], channels_first=True)
        out, _ = jpeg(x.detach().cpu().numpy().astype(np.float32))
        return torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32)).to(x.device)


@register_defense(
    "jpeg",
    info=DefenseInfo(
        "input transform (inference time, on the undefended detector): JPEG re-compression; attacked "
        "obliviously, with the exact (zero) gradient and with BPDA",
        reference="Das et al. 2017; Guo et al., ICLR 2018; ART JpegCompression",
        kind="transform",
        gradients=TRANSFORM_GRADIENTS,
        adaptive="bpda",
    ),
)
def jpeg(*, quality: Annotated[int, at_least(1), at_most(95)] = 90) -> InputTransform:
    """JPEG re-compression of every input."""
    return Jpeg(quality=quality)
