"""Additive Gaussian noise on every input (a random input transform)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from bench.core.registry import at_least, at_most, greater_than
from defenses import DefenseInfo, register_defense
from defenses._transform import InputTransform

if TYPE_CHECKING:
    import torch


class GaussNoise(InputTransform):
    """Additive Gaussian noise of std ``sigma`` grey levels, a fresh draw per forward, clipped to [0, 1].

    The noise is drawn on the CPU from the wrapper's generator and moved to the images' device:
    the same draws on every device.
    """

    def apply(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        import torch

        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype) * (float(self.params["sigma"]) / 255.0)
        return (x + noise.to(x.device)).clamp(0.0, 1.0)


@register_defense(
    "gauss-noise",
    info=DefenseInfo(
        "input transform (inference time, on the undefended detector): additive Gaussian noise (random); "
        "attacked obliviously, with a single-draw gradient and with EOT over eot_samples draws",
        reference="Athalye, Engstrom, Ilyas & Kwok, ICML 2018 (EOT)",
        kind="transform",
        gradients=("oblivious", "exact", "eot"),
        adaptive="eot",
    ),
)
def gauss_noise(
    *, sigma: Annotated[float, greater_than(0.0)] = 2.0, eot_samples: Annotated[int, at_least(1), at_most(1_000)] = 8
) -> InputTransform:
    """Random additive noise on every input (sigma in grey levels)."""
    return GaussNoise(sigma=sigma, eot_samples=eot_samples)
