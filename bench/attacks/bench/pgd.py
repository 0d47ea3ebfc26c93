"""The suite's own PGD on the logit margin, Linf and L2 (the reference attack of every run)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np

from bench.attacks import AttackInfo, register_attack
from bench.attacks.base import FixedEpsilonAttack
from bench.core.registry import at_least, at_most, greater_than

if TYPE_CHECKING:
    import torch
    from torch import nn

BATCH_SIZE = 256


def margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample logit margin max_{j != y} z_j - z_y: positive exactly when the sample is misclassified."""
    import torch

    true = logits.gather(1, y[:, None])[:, 0]
    others = logits.masked_fill(torch.nn.functional.one_hot(y, logits.shape[1]).bool(), float("-inf"))
    return others.max(dim=1).values - true


def _per_sample(v: torch.Tensor, ndim: int) -> torch.Tensor:
    return v.reshape(-1, *([1] * (ndim - 1)))


def _random_start(x0: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """A uniform point of the Linf ball, or a point of the L2 ball in a uniform direction at a
    uniform radius, clipped to [0, 1]; drawn on the CPU from torch's global generator (seeded
    per epsilon by the sweep), so every device draws the same point."""
    import torch

    if norm == "linf":
        noise = (torch.rand(x0.shape) * 2 - 1) * eps
    else:
        direction = torch.randn(x0.shape)
        size = direction.flatten(1).norm(dim=1).clamp_min(1e-12)
        radius = torch.rand(len(x0)) * eps
        noise = direction * _per_sample(radius / size, x0.ndim)
    return (x0 + noise.to(x0.device)).clamp(0.0, 1.0)


def _project(adv: torch.Tensor, x0: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """``adv`` projected on the ``norm`` ball of radius eps around x0, then on [0, 1] (which only
    shrinks a perturbation's every coordinate, so it stays inside the ball)."""
    import torch

    delta = adv - x0
    if norm == "linf":
        delta = delta.clamp(-eps, eps)
    else:
        size = delta.flatten(1).norm(dim=1)
        factor = torch.where(size > eps, eps / size.clamp_min(1e-12), torch.ones_like(size))
        delta = delta * _per_sample(factor, delta.ndim)
    return (x0 + delta).clamp(0.0, 1.0)


def margin_attack(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    eps: float,
    *,
    norm: str,
    steps: int,
    step: float,
    restarts: int,
    device: torch.device,
) -> np.ndarray:
    """PGD maximising the margin: the first run from the clean image, the others from random
    points of the ball; every run takes all its ``steps`` (a larger margin survives 8-bit
    rounding and JPEG better than one just past the boundary), and each sample keeps the iterate
    of largest margin over all runs. A restart attacks only the samples no earlier run fooled.
    Linf steps are ``step`` times the gradient's sign, L2 steps ``step`` along the normalised
    gradient; a zero or non-finite gradient does not move."""
    import torch

    out = []
    for i in range(0, len(x), BATCH_SIZE):
        x0 = torch.from_numpy(np.ascontiguousarray(x[i : i + BATCH_SIZE], dtype=np.float32)).to(device)
        yb = torch.from_numpy(np.asarray(y[i : i + BATCH_SIZE], dtype=np.int64)).to(device)
        best = x0.clone()
        with torch.no_grad():
            best_margin = margin(model(x0), yb)
        for run in range(restarts):
            todo = torch.arange(len(x0), device=device) if run == 0 else torch.nonzero(best_margin <= 0)[:, 0]
            if todo.numel() == 0:
                break
            start, labels = x0[todo], yb[todo]
            adv = start.clone() if run == 0 else _random_start(start, eps, norm)
            for k in range(steps + 1):
                current = adv.clone().requires_grad_(k < steps)
                with torch.set_grad_enabled(k < steps):
                    value = margin(model(current), labels)
                better = value.detach() > best_margin[todo]
                if better.any():
                    best_margin[todo[better]] = value.detach()[better]
                    best[todo[better]] = current.detach()[better]
                if k == steps:
                    break
                grad = None
                if value.requires_grad:  # a detector whose output ignores its input has no gradient at all
                    (grad,) = torch.autograd.grad(value.sum(), current, allow_unused=True)
                grad = torch.zeros_like(current) if grad is None else torch.nan_to_num(grad.detach(), nan=0.0)
                if norm == "linf":
                    move = grad.sign()
                else:
                    # normalised in two stages, by the largest component first: the norm of a
                    # gradient of hugely scaled logits would overflow float32 and stop the attack
                    peak = _per_sample(grad.flatten(1).abs().amax(dim=1).clamp_min(1e-30), grad.ndim)
                    grad = torch.nan_to_num(grad / peak, nan=0.0, posinf=0.0, neginf=0.0)
                    size = grad.flatten(1).norm(dim=1)
                    move = grad / _per_sample(size.clamp_min(1e-30), grad.ndim)
                adv = _project(current.detach() + step * move, start, eps, norm)
        out.append(best.cpu().numpy())
    return np.concatenate(out) if out else np.asarray(x, dtype=np.float32).copy()


@register_attack(
    "bench.pgd",
    info=AttackInfo(
        "the suite's own PGD on the logit margin, Linf: sign steps of travel * eps / steps, the first "
        "run from the clean image, further restarts from random points, the largest-margin iterate kept",
        reference="Madry et al., ICLR 2018; margin loss: Carlini & Wagner, S&P 2017",
        algorithm="pgd-margin",
        matched=("restarts", "steps", "travel"),
    ),
)
@dataclass(frozen=True, kw_only=True)
class MarginPGD(FixedEpsilonAttack):
    """PGD on the logit margin in the class's norm: ``restarts`` runs of ``steps`` steps of
    ``travel * eps / steps`` each (Madry et al.'s 2.5: the steps together can cross the ball
    more than twice)."""

    library = "bench"

    restarts: Annotated[int, at_least(1), at_most(100)] = 1
    steps: Annotated[int, at_least(1), at_most(10_000)] = 20
    travel: Annotated[float, greater_than(0.0)] = 2.5

    def prepare(
        self, model: nn.Module, input_shape: tuple[int, ...], num_classes: int, *, device: torch.device | None = None
    ) -> Any:
        import torch

        return model, device if device is not None else torch.device("cpu")

    def run(self, handle: Any, x: np.ndarray, y: np.ndarray, eps: float) -> np.ndarray:
        model, device = handle
        return margin_attack(
            model,
            x,
            y,
            eps,
            norm=self.norm,
            steps=self.steps,
            step=self.travel * eps / self.steps,
            restarts=self.restarts,
            device=device,
        )


@register_attack(
    "bench.pgd-l2",
    info=AttackInfo(
        "the suite's own PGD on the logit margin, L2: normalised gradient steps of travel * eps / steps, "
        "the first run from the clean image, further restarts from random points, the largest-margin iterate kept",
        reference="Madry et al., ICLR 2018; margin loss: Carlini & Wagner, S&P 2017",
        algorithm="pgd-margin",
        matched=("restarts", "steps", "travel"),
    ),
)
@dataclass(frozen=True, kw_only=True)
class MarginPGDL2(MarginPGD):
    """L2 PGD on the logit margin."""

    norm = "l2"
