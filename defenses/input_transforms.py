"""Inference-time input transforms, evaluated adaptively.

An input transform wraps a detector trained without defence (the ``none`` model of the same
task, detector and seed, shared from the cache) and transforms every input before it: JPEG
re-compression, median smoothing, bit-depth reduction (ART's ``JpegCompression`` and
``FeatureSqueezing`` where ART has them), additive Gaussian noise. Such defences often look
robust only because they break the attacker's gradient (Athalye, Carlini & Wagner, ICML 2018),
so every attack runs three times on them and the table's ``gradient`` column says which gradient
the attacker used:

- ``oblivious``: the gradient of the undefended detector - the attacker ignores the transform and
  the images it crafts are judged through it. The naive evaluation of most papers that proposed
  such defences; the *non-adaptive* baseline.
- ``exact``: what autograd gives through the transform as deployed. It is zero through JPEG
  (computed by PIL outside the graph) and bit-depth reduction (rounding) - a masked gradient -, a
  true sub-gradient through the median, and the gradient of a single noise draw for the noise.
- ``bpda``: Backward Pass Differentiable Approximation - forward through the transform, backward
  as if it were the identity (deterministic transforms). The identity is a biased stand-in for
  the transform's Jacobian: the gradient is taken at the transformed image and followed as if
  every pixel moved the output, so BPDA needs more iterations than an exact gradient (Athalye,
  Carlini & Wagner ran it for many). A BPDA cell runs its attack with ``BPDA_STEPS_FACTOR``
  times the attack's ``steps`` (attacks that have them), and its rows name the attack it ran.
  Measured on ``bayar`` + ``bit-depth[bits=6]`` with ART PGD (500 patches): BPDA with the
  attack's own 10 steps left 0.278 robust at 2/255 against the oblivious transfer's 0.270;
  with 20 steps 0.248.
- ``eot``: Expectation over Transformation - forward through one noise draw (what the deployed
  defence does), backward averaged over ``eot_samples`` fresh draws (random transforms).

Each transform names its ``adaptive`` gradient, the one an adaptive attacker would pick: BPDA for
JPEG and bit-depth, the exact sub-gradient for the (differentiable) median, EOT for the noise.

Predictions always go through the deployed transform (one noise draw per forward for the random
one), from a generator seeded per attack sweep, so numbers are reproducible.
"""

from __future__ import annotations

import abc
import dataclasses
import functools
from typing import TYPE_CHECKING, Annotated, ClassVar

import numpy as np

from bench.registry import at_least, at_most, greater_than
from defenses import DefenseInfo, register_defense

if TYPE_CHECKING:
    import torch

    from bench.registry import Spec
    from torch import nn


BPDA_STEPS_FACTOR = 2  # iterations of a BPDA attack, in multiples of the attack's own ``steps``


class InputTransform(abc.ABC):
    """An inference-time defence: a transform applied to every input of a trained detector."""

    #: gradients the attacks are run with on this defence; the first is the non-adaptive one
    gradients: ClassVar[tuple[str, ...]] = ("oblivious", "exact", "bpda")
    #: the gradient of the adaptive evaluation
    adaptive: ClassVar[str] = "bpda"

    def __init__(self, **params: object) -> None:
        self.params = params

    @staticmethod
    def attack_for(attack: Spec, gradient: str) -> Spec:
        """The attack a cell with this ``gradient`` runs: ``attack`` itself, or for BPDA the same
        attack with ``BPDA_STEPS_FACTOR`` times its ``steps`` (when it has a ``steps`` parameter)."""
        if gradient != "bpda" or "steps" not in dict(attack.params):
            return attack
        params = tuple((k, v * BPDA_STEPS_FACTOR if k == "steps" else v) for k, v in attack.params)
        return dataclasses.replace(attack, params=params)

    @abc.abstractmethod
    def apply(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The transform (in [0, 1]); differentiable where the transform itself is."""

    def wrap(self, model: nn.Module, gradient: str, seed: int) -> nn.Module:
        """The deployed pipeline ``model(transform(x))`` with the attacker's ``gradient``."""
        if gradient not in self.gradients:
            raise ValueError(f"gradient {gradient!r} not available for {type(self).__name__}; allowed: {self.gradients}")
        # oblivious: the deployed pipeline's predictions; the harness crafts on the bare model
        return _defended_class()(model, self, "exact" if gradient == "oblivious" else gradient, seed)


@functools.cache
def _defended_class() -> type:
    """The wrapper module, defined on first use so that importing this file does not import torch."""
    import torch
    from torch import nn

    class Eot(torch.autograd.Function):
        """Forward: one draw (the deployed defence). Backward: the vector-Jacobian product
        averaged over ``eot_samples`` fresh draws (Expectation over Transformation)."""

        @staticmethod
        def forward(ctx, x, defended):  # noqa: ANN001, ANN205
            ctx.save_for_backward(x)
            ctx.defended = defended
            return defended.model(defended.transform.apply(x, defended.generator))

        @staticmethod
        def backward(ctx, grad_out):  # noqa: ANN001, ANN205
            (x,) = ctx.saved_tensors
            defended = ctx.defended
            k = defended.transform.params["eot_samples"]
            total = torch.zeros_like(x)
            with torch.enable_grad():
                for _ in range(k):
                    xi = x.detach().requires_grad_(True)
                    out = defended.model(defended.transform.apply(xi, defended.generator))
                    total += torch.autograd.grad(out, xi, grad_out)[0]
            return total / k, None

    class Defended(nn.Module):
        """``model(transform(x))`` whose backward pass follows ``gradient`` (exact / bpda / eot)."""

        def __init__(self, model: nn.Module, transform: InputTransform, gradient: str, seed: int) -> None:
            super().__init__()
            self.model, self.transform, self.gradient = model, transform, gradient
            self.generator = torch.Generator().manual_seed(seed)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if self.gradient == "eot" and torch.is_grad_enabled() and x.requires_grad:
                return Eot.apply(x, self)
            t = self.transform.apply(x, self.generator)
            if self.gradient == "bpda":
                t = x + (t - x).detach()  # the transform's value, the identity's gradient
            elif x.requires_grad and not t.requires_grad:
                t = t + 0.0 * x  # computed outside autograd (PIL): the exact gradient is zero, not missing
            return self.model(t)

    return Defended


class Jpeg(InputTransform):
    """JPEG re-compression at ``quality`` (ART's JpegCompression, PIL); no gradient flows through it."""

    def apply(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        import torch
        from art.defences.preprocessor import JpegCompression

        jpeg = JpegCompression(clip_values=(0.0, 1.0), quality=self.params["quality"], channels_first=True)
        out, _ = jpeg(x.detach().cpu().numpy().astype(np.float32))
        return torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32))


class BitDepth(InputTransform):
    """Bit-depth reduction to ``bits`` per channel (ART's FeatureSqueezing); rounding has zero gradient."""

    def apply(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        import torch

        levels = 2 ** self.params["bits"] - 1
        return torch.round(x * levels) / levels  # ART FeatureSqueezing's formula on [0, 1], in torch


class MedianSmooth(InputTransform):
    """Median filter over ``size`` x ``size`` windows (reflect padding, as scipy / ART's SpatialSmoothing)."""

    adaptive = "exact"  # the median routes the gradient to the selected pixel: better than BPDA's identity

    def apply(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        from torch.nn import functional as F

        k = self.params["size"]
        n, c, h, w = x.shape
        padded = F.pad(x, (k // 2, (k - 1) // 2, k // 2, (k - 1) // 2), mode="reflect")
        windows = F.unfold(padded, k).reshape(n, c, k * k, h * w)
        return windows.median(dim=2).values.reshape(n, c, h, w)


class GaussNoise(InputTransform):
    """Additive Gaussian noise of std ``sigma`` grey levels, a fresh draw per forward, clipped to [0, 1]."""

    gradients = ("oblivious", "exact", "eot")
    adaptive = "eot"

    def apply(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        import torch

        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype) * (self.params["sigma"] / 255.0)
        return (x + noise).clamp(0.0, 1.0)


def _info(what: str, reference: str) -> DefenseInfo:
    return DefenseInfo(f"input transform (inference time, on the undefended detector): {what}", reference=reference)


@register_defense("jpeg", info=_info("JPEG re-compression; attacked obliviously, with the exact (zero) gradient and with BPDA",
                                     "Das et al. 2017; Guo et al., ICLR 2018; ART JpegCompression"))  # fmt: skip
def jpeg(*, quality: Annotated[int, at_least(1), at_most(95)] = 90) -> InputTransform:
    """JPEG re-compression of every input."""
    return Jpeg(quality=quality)


@register_defense("median-smooth", info=_info("median filter; attacked obliviously, with the exact sub-gradient and with BPDA",
                                              "Xu, Evans & Qi, NDSS 2018 (feature squeezing); ART SpatialSmoothing"))  # fmt: skip
def median_smooth(*, size: Annotated[int, at_least(2)] = 3) -> InputTransform:
    """Median smoothing of every input."""
    return MedianSmooth(size=size)


@register_defense("bit-depth", info=_info("bit-depth reduction; attacked obliviously, with the exact (zero) gradient and with BPDA",
                                          "Xu, Evans & Qi, NDSS 2018; ART FeatureSqueezing"))  # fmt: skip
def bit_depth(*, bits: Annotated[int, at_least(1), at_most(8)] = 6) -> InputTransform:
    """Bit-depth reduction of every input."""
    return BitDepth(bits=bits)


@register_defense("gauss-noise", info=_info("additive Gaussian noise (random); attacked obliviously, with a "
                                            "single-draw gradient and with EOT over eot_samples draws",
                                            "Athalye, Engstrom, Ilyas & Kwok, ICML 2018 (EOT)"))  # fmt: skip
def gauss_noise(
    *, sigma: Annotated[float, greater_than(0.0)] = 2.0, eot_samples: Annotated[int, at_least(1)] = 8
) -> InputTransform:
    """Random additive noise on every input (sigma in grey levels)."""
    return GaussNoise(sigma=sigma, eot_samples=eot_samples)
