"""Common attack interface: a final template method that owns the shared work.

Subclasses implement ``prepare`` (wrap the detector for their library, once per call) and
``run`` (perturb a batch at one epsilon). ``Attack.__call__`` sweeps the epsilons in
increasing order and only attacks, at each epsilon, the samples still robust at the previous
one: an adversarial example found inside a smaller ball also lies inside every larger one, so
robust accuracy can only fall with epsilon and a sweep costs little more than its largest
epsilon. Every returned image is checked to lie inside its epsilon ball and in [0, 1]; a
library that returns anything else makes the attack fail loudly rather than count.
"""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Sequence, final

import numpy as np

if TYPE_CHECKING:
    from torch import nn

BUDGET_TOLERANCE = 1e-6  # float32 rounding allowed beyond the epsilon ball / [0, 1] box


class AttackBudgetError(RuntimeError):
    """An attack returned an image outside its epsilon ball or outside [0, 1]."""


@dataclass(frozen=True)
class AttackResult:
    """Outcome of one attack sweep on one detector.

    Arrays are indexed [epsilon, sample] where they have two axes; epsilons are ascending,
    in [0, 1] units. ``x_adv[k]`` holds, for every sample, the worst example found at
    epsilon k or below (the clean image for samples misclassified from the start).
    """

    epsilons: np.ndarray  # (E,)
    x: np.ndarray  # (N, C, H, W) clean inputs
    y: np.ndarray  # (N,)
    clean_pred: np.ndarray  # (N,)
    adv_pred: np.ndarray  # (E, N)
    x_adv: np.ndarray  # (E, N, C, H, W)
    seconds: np.ndarray  # (E,) attack time per epsilon (excluding the shared clean pass)
    attacked: np.ndarray  # (E,) number of samples attacked at each epsilon

    @property
    def clean_correct(self) -> np.ndarray:
        return self.clean_pred == self.y

    @property
    def adv_correct(self) -> np.ndarray:
        """(E, N): still correctly classified at that epsilon (and correct when clean)."""
        return self.clean_correct[None] & (self.adv_pred == self.y[None])

    @property
    def robust_accuracy(self) -> np.ndarray:
        return self.adv_correct.mean(axis=1)

    @property
    def linf(self) -> np.ndarray:
        """(E, N) L-infinity norm of each perturbation."""
        return np.abs(self.x_adv - self.x[None]).reshape(len(self.epsilons), len(self.y), -1).max(axis=2)

    @property
    def l2(self) -> np.ndarray:
        """(E, N) L2 norm of each perturbation."""
        d = (self.x_adv - self.x[None]).reshape(len(self.epsilons), len(self.y), -1).astype(np.float64)
        return np.sqrt((d * d).sum(axis=2))


def predict(model: nn.Module, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Class predictions of a detector on float32 images."""
    import torch

    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            out.append(model(torch.from_numpy(x[i : i + batch_size])).argmax(dim=1).numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def project_checked(adv: np.ndarray, x: np.ndarray, eps: float, who: str) -> np.ndarray:
    """Check that ``adv`` lies in the Linf ball of radius eps around x and in [0, 1].

    Float32 rounding up to BUDGET_TOLERANCE is clipped away; anything larger raises
    AttackBudgetError.
    """
    adv = np.asarray(adv, dtype=np.float32).reshape(x.shape)
    if not np.all(np.isfinite(adv)):
        raise AttackBudgetError(f"{who} returned non-finite pixels")
    over = np.abs(adv.astype(np.float64) - x.astype(np.float64)).max(initial=0.0) - eps
    outside = max(-float(adv.min(initial=0.0)), float(adv.max(initial=1.0)) - 1.0)
    if over > BUDGET_TOLERANCE or outside > BUDGET_TOLERANCE:
        raise AttackBudgetError(
            f"{who} left its budget at eps={eps:.6g}: Linf exceeds eps by {over:.3g}, [0,1] exceeded by {outside:.3g}"
        )
    return np.clip(np.clip(adv, x - np.float32(eps), x + np.float32(eps)), 0.0, 1.0)


class Attack(abc.ABC):
    """A fixed-epsilon attack on a PyTorch detector (inputs in [0, 1], logits out)."""

    library: ClassVar[str]
    norm: ClassVar[str] = "linf"

    def __init__(self, **params: Any) -> None:
        self.params = params

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in sorted(self.params.items()))})"

    @abc.abstractmethod
    def prepare(self, model: nn.Module, input_shape: tuple[int, ...], num_classes: int) -> Any:
        """Wrap the detector for the attack library (called once per sweep)."""

    @abc.abstractmethod
    def run(self, handle: Any, x: np.ndarray, y: np.ndarray, eps: float) -> np.ndarray:
        """Return adversarial versions of ``x`` (float32, same shape) at Linf budget ``eps``."""

    @final
    def __call__(
        self,
        model: nn.Module,
        x: np.ndarray,
        y: np.ndarray,
        epsilons: Sequence[float],
        *,
        seed: int,
        surrogate: nn.Module | None = None,
    ) -> AttackResult:
        """Attack ``model`` on (x, y) at every epsilon; see the module docstring for the sweep.

        ``surrogate``: craft the adversarial images on this model instead (its gradients), and
        judge them on ``model`` - a transfer attack; the harness uses it for the oblivious
        evaluation of input transforms (crafted on the undefended detector).
        """
        import torch

        model.eval()
        x = np.ascontiguousarray(x, dtype=np.float32)
        y = np.asarray(y, dtype=np.int64)
        eps_sorted = np.sort(np.asarray(epsilons, dtype=np.float64))
        clean_pred = predict(model, x)
        with torch.no_grad():
            num_classes = int(model(torch.from_numpy(x[:1])).shape[1])
        if surrogate is not None:
            surrogate.eval()
        handle = self.prepare(surrogate if surrogate is not None else model, tuple(x.shape[1:]), num_classes)
        pred = clean_pred.copy()
        current = x.copy()
        x_adv, adv_pred, seconds, attacked = [], [], [], []
        for k, eps in enumerate(eps_sorted):
            idx = np.flatnonzero(pred == y)  # correct so far: clean-correct and not yet fooled
            start = time.perf_counter()
            if idx.size:
                torch.manual_seed(seed + 7919 * k)
                np.random.seed((seed + 7919 * k) % 2**32)  # ART draws random starts from numpy's global RNG
                adv = self.run(handle, x[idx], y[idx], float(eps))
                current[idx] = project_checked(adv, x[idx], float(eps), repr(self))
                pred[idx] = predict(model, current[idx])
            seconds.append(time.perf_counter() - start)
            attacked.append(idx.size)
            x_adv.append(current.copy())
            adv_pred.append(pred.copy())
        return AttackResult(
            epsilons=eps_sorted,
            x=x,
            y=y,
            clean_pred=clean_pred,
            adv_pred=np.stack(adv_pred),
            x_adv=np.stack(x_adv),
            seconds=np.asarray(seconds),
            attacked=np.asarray(attacked),
        )
