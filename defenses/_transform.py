"""What the input-transform defences share: the wrapper that puts a transform in front of a detector.

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
  times the attack's ``steps`` (attacks that have them), and its rows name the attack it ran
  (docs/design.md, Defences, has the measurement behind the factor).
- ``eot``: Expectation over Transformation - forward through one noise draw (what the deployed
  defence does), backward averaged over ``eot_samples`` fresh draws (random transforms).

Each transform's registry info (:class:`defenses.DefenseInfo`) lists the gradients it is attacked
with and names its ``adaptive`` one, the one an adaptive attacker would pick: BPDA for JPEG and
bit-depth, the exact sub-gradient for the (differentiable) median, EOT for the noise.

Predictions always go through the deployed transform (one noise draw per forward for the random
one), from a generator seeded per attack sweep, so numbers are reproducible.
"""

from __future__ import annotations

import abc
import dataclasses
import functools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn

    from bench.core.registry import Spec


BPDA_STEPS_FACTOR = 2  # iterations of a BPDA attack, in multiples of the attack's own ``steps``


GRADIENTS = ("oblivious", "exact", "bpda", "eot")  # every gradient a transform can be attacked with


def attack_for(attack: Spec, gradient: str) -> Spec:
    """The attack a cell with this ``gradient`` runs: ``attack`` itself, or for BPDA the same attack
    with ``BPDA_STEPS_FACTOR`` times its ``steps`` (when it has a ``steps`` parameter)."""
    if gradient != "bpda" or "steps" not in dict(attack.params):
        return attack
    params = tuple((k, v * BPDA_STEPS_FACTOR if k == "steps" else v) for k, v in attack.params)
    return dataclasses.replace(attack, params=params)


class InputTransform(abc.ABC):
    """An inference-time defence: a transform applied to every input of a trained detector."""

    def __init__(self, **params: Any) -> None:
        self.params = params

    @abc.abstractmethod
    def apply(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The transform (in [0, 1]), on ``x``'s device; differentiable where the transform itself is.
        ``generator`` is a CPU generator: random draws are made on the CPU and moved to ``x``'s device."""

    def wrap(self, model: nn.Module, gradient: str, seed: int) -> nn.Module:
        """The deployed pipeline ``model(transform(x))`` with the attacker's ``gradient``."""
        if gradient not in GRADIENTS:
            raise ValueError(f"gradient {gradient!r} unknown; allowed: {', '.join(GRADIENTS)}")
        # oblivious: the deployed pipeline's predictions; the harness crafts on the bare model
        defended: nn.Module = _defended_class()(model, self, "exact" if gradient == "oblivious" else gradient, seed)
        return defended


@functools.cache
def _defended_class() -> type[nn.Module]:
    """The wrapper module, defined on first use so that importing this file does not import torch."""
    import torch
    from torch import nn

    class Eot(torch.autograd.Function):
        """Forward: one draw (the deployed defence). Backward: the vector-Jacobian product
        averaged over ``eot_samples`` fresh draws (Expectation over Transformation)."""

        @staticmethod
        def forward(ctx: Any, x: torch.Tensor, defended: Any) -> torch.Tensor:
            ctx.save_for_backward(x)
            ctx.defended = defended
            logits: torch.Tensor = defended.model(defended.transform.apply(x, defended.generator))
            return logits

        @staticmethod
        def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor, None]:
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
                averaged: torch.Tensor = Eot.apply(x, self)  # type: ignore[no-untyped-call]  # torch leaves apply untyped
                return averaged
            t = self.transform.apply(x, self.generator)
            if self.gradient == "bpda":
                t = x + (t - x).detach()  # the transform's value, the identity's gradient
            elif x.requires_grad and not t.requires_grad:
                t = t + 0.0 * x  # computed outside autograd (PIL): the exact gradient is zero, not missing
            logits: torch.Tensor = self.model(t)
            return logits

    return Defended
