"""Common attack interface: a final template method that owns the shared work.

Subclasses implement ``prepare`` (wrap the detector for their library, once per call) and, as in
Foolbox, derive from one of two base classes: :class:`FixedEpsilonAttack` implements ``run``
(perturb a batch at one epsilon), :class:`MinimumNormAttack` implements ``run_unbounded`` (the
smallest adversarial perturbation the attack finds, whatever its size).

``Attack.__call__`` sweeps the epsilons in increasing order. A fixed-epsilon attack only
attacks, at each epsilon, the samples still robust at the previous one: an adversarial example
found inside a smaller ball also lies inside every larger one, so robust accuracy can only fall
with epsilon and a sweep costs little more than its largest epsilon. A minimum-norm attack runs
once; each sample's smallest successful perturbation norm (``AttackResult.min_norm``) gives the
robust accuracy at every epsilon and a continuous curve. Every returned image is checked to lie
inside its epsilon ball (in the attack's norm) and in [0, 1]; a library that returns anything
else makes the attack fail loudly rather than count.

Norms: ``linf`` budgets are eps in [0, 1] units; ``l2`` budgets are Euclidean norms in [0, 1]
units (the matrix scales them to the patch size, see :func:`l2_budget`).
"""

from __future__ import annotations

import abc
import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, final

import numpy as np

from bench.core.devices import model_device
from bench.core.inference import evaluation_copy, logits, predict

if TYPE_CHECKING:
    import torch
    from torch import nn

QUERY_THREATS = ("score", "decision")  # the attacks whose queries are a column
BUDGET_TOLERANCE = 1e-6  # float32 rounding allowed beyond the epsilon ball / [0, 1] box (relative for l2)
NORMS = ("linf", "l2")


def linf_budget(eps_255: float) -> float:
    """The Linf budget of a matrix epsilon e (8-bit units): e/255, in [0, 1] units."""
    return eps_255 / 255.0


def l2_budget(eps_255: float, shape: tuple[int, ...]) -> float:
    """The L2 budget of a matrix epsilon e (8-bit units) for images of ``shape`` (C, H, W).

    e/255 * sqrt(C*H*W): the L2 norm of a perturbation that changes every pixel by e grey
    levels, so the same e means a comparable per-pixel change at any patch size (64x64 grey:
    e = 1 -> 0.251).
    """
    return eps_255 / 255.0 * float(np.sqrt(np.prod(shape)))


def norms(delta: np.ndarray, norm: str) -> np.ndarray:
    """Per-sample norm of perturbations shaped (N, ...), in float64."""
    flat = np.asarray(delta, dtype=np.float64).reshape(len(delta), -1)
    if norm == "linf":
        return np.asarray(np.abs(flat).max(axis=1, initial=0.0))
    if norm == "l2":
        return np.asarray(np.sqrt((flat * flat).sum(axis=1)))
    raise ValueError(f"unknown norm {norm!r}; allowed: {', '.join(NORMS)}")


def within(delta_norms: np.ndarray, eps: float) -> np.ndarray:
    """Whether perturbation norms lie inside the eps ball (up to float32 rounding)."""
    return delta_norms <= eps + BUDGET_TOLERANCE * max(1.0, eps)


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
    seconds: np.ndarray  # (E,) attack time per epsilon (excluding the shared clean pass); a
    # minimum-norm attack's single run counts at the smallest epsilon
    attacked: np.ndarray  # (E,) number of samples attacked at each epsilon
    norm: str = "linf"
    # (N,) minimum-norm attacks only: each sample's smallest adversarial perturbation found, in
    # ``norm`` ([0, 1] units); 0 where misclassified from the start, inf where none was found
    min_norm: np.ndarray | None = None
    queries: np.ndarray | None = None  # (E,) model queries per attacked sample, where the attack counts them
    # the model evaluations of the whole sweep, the harness's predictions included: the number of
    # calls by (batch size, with input gradient); a call with input gradient is a forward and a
    # backward pass (``bench costs`` prices them; None where the images were crafted on a surrogate)
    evaluations: dict[tuple[int, bool], int] | None = None

    @property
    def clean_correct(self) -> np.ndarray:
        return np.asarray(self.clean_pred == self.y)

    @property
    def adv_correct(self) -> np.ndarray:
        """(E, N): still correctly classified at that epsilon (and correct when clean)."""
        return np.asarray(self.clean_correct[None] & (self.adv_pred == self.y[None]))

    @property
    def robust_accuracy(self) -> np.ndarray:
        return np.asarray(self.adv_correct.mean(axis=1))

    @property
    def linf(self) -> np.ndarray:
        """(E, N) L-infinity norm of each perturbation."""
        return np.asarray(np.abs(self.x_adv - self.x[None]).reshape(len(self.epsilons), len(self.y), -1).max(axis=2))

    @property
    def l2(self) -> np.ndarray:
        """(E, N) L2 norm of each perturbation."""
        d = (self.x_adv - self.x[None]).reshape(len(self.epsilons), len(self.y), -1).astype(np.float64)
        return np.asarray(np.sqrt((d * d).sum(axis=2)))


def project_checked(adv: np.ndarray, x: np.ndarray, eps: float, who: str, norm: str = "linf") -> np.ndarray:
    """Check that ``adv`` lies in the ``norm`` ball of radius eps around x and in [0, 1].

    Float32 rounding up to BUDGET_TOLERANCE is projected away; anything larger raises
    AttackBudgetError.
    """
    adv = np.asarray(adv, dtype=np.float32).reshape(x.shape)
    if not np.all(np.isfinite(adv)):
        raise AttackBudgetError(f"{who} returned non-finite pixels")
    size = norms(adv.astype(np.float64) - x.astype(np.float64), norm)
    over = float(size.max(initial=0.0)) - eps
    outside = max(-float(adv.min(initial=0.0)), float(adv.max(initial=1.0)) - 1.0)
    if not within(size, eps).all() or outside > BUDGET_TOLERANCE:
        name = {"linf": "Linf", "l2": "L2"}[norm]
        raise AttackBudgetError(
            f"{who} left its budget at eps={eps:.6g}: {name} exceeds eps by {over:.3g}, [0,1] exceeded by {outside:.3g}"
        )
    return clip_to_ball(adv, x, eps, norm)


def clip_to_ball(adv: np.ndarray, x: np.ndarray, eps: float, norm: str) -> np.ndarray:
    """Project float32 images into the eps ball around x (in ``norm``) and into [0, 1]."""
    adv = np.clip(adv.astype(np.float32), 0.0, 1.0)
    if norm == "linf":
        return np.asarray(np.clip(np.clip(adv, x - np.float32(eps), x + np.float32(eps)), 0.0, 1.0))
    for _ in range(8):  # shrinking towards x keeps [0, 1]; float32 rounding may need a second pass
        size = norms(adv - x, "l2")
        over = size > eps
        if not over.any():
            break
        scale = (eps / size[over] * (1 - 1e-6)).astype(np.float32).reshape(-1, *([1] * (x.ndim - 1)))
        adv[over] = x[over] + (adv[over] - x[over]) * scale
    return adv


def quantize(adv: np.ndarray, x: np.ndarray, eps: float, norm: str) -> np.ndarray:
    """Round adversarial images to 8-bit levels, staying inside the eps ball and [0, 1].

    ``x`` must be on the 8-bit grid (images read from 8-bit files are). Rounding to the nearest
    level moves a pixel by at most half a level; where that leaves the Linf ball the pixel steps
    one level back towards x. For L2, an image that rounding pushes out of the ball is instead
    rounded towards x pixel by pixel (truncation), which can only shrink every coordinate of
    the perturbation. The result is float32 on the grid.
    """
    levels = np.rint(np.asarray(x, dtype=np.float64) * 255.0)
    if not np.allclose(levels / 255.0, x, atol=1e-6):
        raise ValueError("quantize: the clean images are not on the 8-bit grid")
    step = np.rint(np.asarray(adv, dtype=np.float64) * 255.0) - levels  # perturbation in whole levels
    if norm == "linf":
        limit = np.floor(eps * 255.0 + 1e-6)
        step = np.clip(step, -limit, limit)
    else:
        size = np.sqrt((step.reshape(len(step), -1) ** 2).sum(axis=1)) / 255.0
        out = ~within(size, eps)
        if out.any():
            exact = np.asarray(adv, dtype=np.float64)[out] * 255.0 - levels[out]
            step[out] = np.trunc(np.round(exact, 6))
    q = np.clip(levels + step, 0.0, 255.0) / 255.0
    return np.asarray(q, dtype=np.float32)


class Attack(abc.ABC):
    """An attack on a PyTorch detector (inputs in [0, 1], logits out).

    Subclass :class:`FixedEpsilonAttack` or :class:`MinimumNormAttack` and implement ``prepare``
    and the one method of that base class. Built-in attacks are keyword-only frozen dataclasses:
    each parameter is written once, as a typed field, which the registry reads as the entry's
    parameters (``art.pgd[random_start=true,rel_stepsize=0.25,steps=10]``); ``repr`` shows them.

    Class attributes describe the attack for the tables: ``library``, ``norm`` (linf | l2) and
    ``threat`` (white-box | score | decision | control: a non-adversarial perturbation at the same
    budget). Score- and decision-based attacks report their per-sample query budget through
    :meth:`query_budget`.
    """

    library: ClassVar[str]
    norm: ClassVar[str] = "linf"
    threat: ClassVar[str] = "white-box"
    minimum_norm: ClassVar[bool]

    @property
    def params(self) -> dict[str, Any]:
        """Parameter values by canonical key (a field ``lambda_`` has the key ``lambda``)."""
        fields: tuple[dataclasses.Field[Any], ...] = dataclasses.fields(self) if dataclasses.is_dataclass(self) else ()
        return {f.name.rstrip("_"): getattr(self, f.name) for f in fields}

    def query_budget(self) -> int | None:
        """Most model queries the attack makes per sample (score/decision attacks); None if unbounded."""
        return None

    @abc.abstractmethod
    def prepare(
        self, model: nn.Module, input_shape: tuple[int, ...], num_classes: int, *, device: torch.device | None = None
    ) -> Any:
        """Wrap the detector for the attack library (called once per sweep); the model is on ``device``
        already (``None``: the CPU), and the library must run it there."""

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
        device: torch.device | None = None,
    ) -> AttackResult:
        """Attack ``model`` on (x, y) at every epsilon (in this attack's norm); see the module docstring.

        ``surrogate``: craft the adversarial images on this model instead (its gradients), and
        judge them on ``model`` - a transfer attack; the harness uses it for the oblivious
        evaluation of input transforms (crafted on the undefended detector).
        ``device``: where the models run (moved there, as copies, if they are elsewhere; ``None``:
        where ``model`` is). Images and results stay numpy arrays on the CPU.
        """
        device = device if device is not None else model_device(model)
        model = evaluation_copy(model, device=device)
        surrogate = evaluation_copy(surrogate, device=device) if surrogate is not None else None
        x = np.ascontiguousarray(x, dtype=np.float32)
        y = np.asarray(y, dtype=np.int64)
        eps_sorted = np.sort(np.asarray(epsilons, dtype=np.float64))
        counter = EvaluationCounter(surrogate if surrogate is not None else model)
        # the clean pass goes through the counter too when the attack is judged on the model it
        # runs (not on a surrogate): it is one of the cell's model evaluations
        clean_logits = logits(counter if surrogate is None else model, x, device=device)
        counter.reset_queries()
        clean_pred = np.asarray(clean_logits.argmax(axis=1), dtype=np.int64)
        handle = self.prepare(counter, tuple(x.shape[1:]), int(clean_logits.shape[1]), device=device)
        judge = counter if surrogate is None else model
        sweep = _Sweep(judge, handle, x, y, eps_sorted, clean_pred, seed, counter, device, surrogate is not None)
        return self._sweep(sweep)

    @abc.abstractmethod
    def _sweep(self, sweep: _Sweep) -> AttackResult:
        """The epsilon sweep of this kind of attack (implemented by the two base classes)."""


@dataclass(frozen=True)
class _Sweep:
    """What :meth:`Attack.__call__` prepares for the sweep."""

    model: nn.Module  # the model the images are judged on (through the counter unless on a surrogate)
    handle: Any
    x: np.ndarray
    y: np.ndarray
    epsilons: np.ndarray  # ascending
    clean_pred: np.ndarray
    seed: int
    counter: Any  # the EvaluationCounter round the model the attack runs on
    device: torch.device  # where the models run
    on_surrogate: bool = False  # crafted on a surrogate: the counts are not the judged model's

    def evaluations(self) -> dict[tuple[int, bool], int] | None:
        return None if self.on_surrogate else dict(self.counter.calls)


class FixedEpsilonAttack(Attack):
    """An attack given a budget: implement :meth:`run`.

    The sweep attacks, at each epsilon in increasing order, only the samples still robust at the
    previous one (an example found inside a smaller ball lies inside every larger one).
    """

    minimum_norm: ClassVar[bool] = False

    @abc.abstractmethod
    def run(self, handle: Any, x: np.ndarray, y: np.ndarray, eps: float) -> np.ndarray:
        """Adversarial versions of ``x`` (float32, same shape) within ``eps`` of it."""

    @final
    def _sweep(self, sweep: _Sweep) -> AttackResult:
        x, y, counter = sweep.x, sweep.y, sweep.counter
        pred = sweep.clean_pred.copy()
        current = x.copy()
        x_adv, adv_pred, seconds, attacked, queries = [], [], [], [], []
        for k, eps in enumerate(sweep.epsilons):
            idx = np.flatnonzero(pred == y)  # correct so far: clean-correct and not yet fooled
            start = time.perf_counter()
            counter.reset_queries()
            if idx.size:
                seed_everything(sweep.seed + 7919 * k)
                adv = self.run(sweep.handle, x[idx], y[idx], float(eps))
                queries.append(counter.queries / idx.size)
                current[idx] = project_checked(adv, x[idx], float(eps), repr(self), self.norm)
                pred[idx] = predict(sweep.model, current[idx], device=sweep.device)
            else:
                queries.append(0.0)
            seconds.append(time.perf_counter() - start)
            attacked.append(idx.size)
            x_adv.append(current.copy())
            adv_pred.append(pred.copy())
        return AttackResult(
            epsilons=sweep.epsilons,
            x=x,
            y=y,
            clean_pred=sweep.clean_pred,
            adv_pred=np.stack(adv_pred),
            x_adv=np.stack(x_adv),
            seconds=np.asarray(seconds),
            attacked=np.asarray(attacked),
            norm=self.norm,
            queries=np.asarray(queries) if self.threat in QUERY_THREATS else None,
            evaluations=sweep.evaluations(),
        )


class MinimumNormAttack(Attack):
    """An attack that looks for the smallest adversarial perturbation: implement :meth:`run_unbounded`.

    It runs once, unbounded, on the clean-correct samples; a sample is robust at eps iff no
    adversarial example of norm <= eps was found, so one run gives every epsilon.
    """

    minimum_norm: ClassVar[bool] = True

    @abc.abstractmethod
    def run_unbounded(self, handle: Any, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The smallest adversarial version of each image the attack finds.

        Images it could not make adversarial may come back unchanged or with any perturbation:
        the harness checks every returned image on the detector and keeps only successes.
        """

    @final
    def _sweep(self, sweep: _Sweep) -> AttackResult:
        x, y, clean_pred, counter = sweep.x, sweep.y, sweep.clean_pred, sweep.counter
        idx = np.flatnonzero(clean_pred == y)
        min_norm = np.where(clean_pred == y, np.inf, 0.0)
        found = x.copy()
        found_pred = clean_pred.copy()
        start = time.perf_counter()
        counter.reset_queries()
        per_sample = 0.0
        if idx.size:
            seed_everything(sweep.seed)
            adv = np.asarray(self.run_unbounded(sweep.handle, x[idx], y[idx]), dtype=np.float32).reshape(x[idx].shape)
            per_sample = counter.queries / idx.size
            if not np.all(np.isfinite(adv)):
                raise AttackBudgetError(f"{self!r} returned non-finite pixels")
            adv = np.clip(adv, 0.0, 1.0)  # libraries clip already; float32 rounding aside
            pred = predict(sweep.model, adv, device=sweep.device)
            fooled = pred != y[idx]
            size = norms(adv - x[idx], self.norm)
            min_norm[idx] = np.where(fooled, size, np.inf)
            found[idx] = np.where(fooled[:, None, None, None], adv, x[idx])
            found_pred[idx] = np.where(fooled, pred, clean_pred[idx])
        seconds = time.perf_counter() - start
        x_adv, adv_pred = [], []
        for eps in sweep.epsilons:
            take = (clean_pred == y) & within(min_norm, float(eps))
            x_adv.append(np.where(take[:, None, None, None], found, x))
            adv_pred.append(np.where(take, found_pred, clean_pred))
        rest = len(sweep.epsilons) - 1
        return AttackResult(
            epsilons=sweep.epsilons,
            x=x,
            y=y,
            clean_pred=clean_pred,
            adv_pred=np.stack(adv_pred),
            x_adv=np.stack(x_adv),
            seconds=np.array([seconds] + [0.0] * rest),
            attacked=np.array([idx.size] + [0] * rest),
            norm=self.norm,
            min_norm=min_norm,
            queries=np.array([per_sample] + [0.0] * rest) if self.threat in QUERY_THREATS else None,
            evaluations=sweep.evaluations(),
        )


def EvaluationCounter(model: nn.Module) -> Any:
    """Wrap a detector so that every call is counted: ``calls`` counts the calls by (batch size,
    with input gradient), ``queries`` the images asked about since :meth:`reset_queries` (the query
    count of a score- or decision-based attack). A call counts as one with input gradient when
    autograd is on and the input requires a gradient (a forward and, by every attack library, a
    backward pass)."""
    import collections

    import torch
    from torch import nn

    class _EvaluationCounter(nn.Module):
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner
            self.calls: collections.Counter[tuple[int, bool]] = collections.Counter()
            self.queries = 0

        def reset_queries(self) -> None:
            self.queries = 0

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            n = int(x.shape[0])
            self.calls[(n, bool(torch.is_grad_enabled() and x.requires_grad))] += 1
            self.queries += n
            out: torch.Tensor = self.inner(x)
            return out

    return _EvaluationCounter(model).eval()


def seed_everything(seed: int) -> None:
    """Seed torch and numpy's global generators (ART draws random starts from numpy's)."""
    import torch

    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
