"""Cheap per-model probes behind the trust flags (bench/run/flags.py, docs/flags.md).

Questions a robustness number cannot answer about itself, asked once per trained model
(and attacker's gradient, for input transforms) on the cell's attacked test subset:

* ``zero_gradient_share``: the share of clean-correct samples whose input gradient of the logit
  margin is all zero or not finite. The margin (the best other logit minus the true one, the
  loss of C&W and AutoAttack's DLR) does not saturate: cross entropy underflows to exactly 0 in
  float32 on very confident correct predictions, which is saturation, not masking.
* ``unbounded_robust_accuracy``: robust accuracy under a native PyTorch PGD with a budget far
  beyond any matrix epsilon (Linf :data:`UNBOUNDED_EPS`, margin loss, :data:`STEPS` sign steps of
  :data:`STEP` from the clean image). On a differentiable detector it must reach about 0 (Pintor
  et al. 2022, "unconstrained attack failure"). It starts from the clean image, not a random
  point of the ball: uniform noise of 64 grey levels drives the truncating front ends of Bayar
  and SRM into saturation, where their gradient vanishes, and the probe would then measure its
  own failure (docs/design.md, Trust flags).
  Its first gradient is the one ``zero_gradient_share`` inspects.
* ``loss_not_increasing_share``: from the same run, the share of clean-correct samples whose
  margin never rose above its value at the clean image (Pintor et al.'s incomplete optimisation).
* ``zero_loss_gradient_share``: the share of clean-correct samples whose input gradient of the
  cross entropy - the loss the ART and Foolbox gradient attacks follow - is all zero or not
  finite at the clean image. The margin is blind to a detector whose logits are scaled up (its
  sign steps do not see the scale): cross entropy then saturates, its gradient underflows to 0
  and every attack following it stands still while the margin probes pass. An ordinary detector
  has margins of a few units, far from the roughly 100 that float32 needs to underflow.
* ``noisy_gradient_share``: the share of clean-correct samples whose margin gradient, taken twice
  at the clean image, points two ways: cosine similarity of the two below
  :data:`NOISY_COSINE`. A deterministic detector repeats its gradient exactly (cosine 1); a
  stochastic layer or a random input transform draws a new one each time. Each draw is signal
  plus independent noise, and the expected cosine of two draws is the signal's share of the
  gradient's power: below 0.5 the noise outweighs the signal and a gradient attack is steered by
  chance (Athalye et al. 2018: use EOT).

A stage (bench/run/plan.py, ``STAGES``): each probe is cached under a key of the model, the
defence and gradient, the attacked subset and this module's fingerprint, so a rerun costs
nothing and editing a probe recomputes only the probes (never a cell).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from bench.attacks.bench.pgd import margin  # the reference attack's loss (bench/attacks/bench)
from bench.core.devices import model_device, on_device
from bench.core.inference import BATCH_SIZE, predict
from bench.run.subset import attacked_subset
from defenses import deployed

if TYPE_CHECKING:
    import torch
    from torch import nn

    from bench.core.registry import Spec
    from bench.inputs.data import Dataset

UNBOUNDED_EPS = 64 / 255  # Linf, [0, 1] units: 4x the largest default epsilon, a quarter of the pixel range
STEP = 2 / 255  # Linf step of the unbounded probe (sign of the gradient): two grey levels
STEPS = 32  # STEPS x STEP = UNBOUNDED_EPS: the whole ball is reachable; a sample stops once fooled
# per-sample numbers whatever the batch; 500 gradients at once on srm held about 1 GB more (design.md, Costs)
BATCH = BATCH_SIZE
NOISY_COSINE = 0.5  # two draws of a gradient whose noise outweighs its signal correlate below this


def margin_pgd(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    *,
    steps: int = STEPS,
    step: float = STEP,
    eps: float = UNBOUNDED_EPS,
    surrogate: nn.Module | None = None,
    device: torch.device | None = None,
) -> dict[str, np.ndarray]:
    """Linf PGD on the margin from the clean images, judged on ``model``, per sample.

    Steps of ``step`` (sign of the gradient) projected on the ``eps`` ball and [0, 1]; a sample
    stops once fooled, and the run stops when no sample moves any more (a deterministic model
    would only repeat itself). ``surrogate``: take the gradients (and the margin) from this
    model and judge on ``model`` (the oblivious evaluation of an input transform). ``device``:
    where the models are (``None``: wherever ``model`` is); the arrays come back on the CPU.

    Returns boolean arrays: ``zero_gradient`` (all-zero or non-finite margin gradient at the
    clean image), ``fooled`` (misclassified at some iterate) and ``rose`` (margin rose above its
    value at the clean image at some step).
    """
    import torch

    device = device if device is not None else model_device(model)
    attacker = surrogate if surrogate is not None else model
    out: dict[str, list[np.ndarray]] = {"zero_gradient": [], "fooled": [], "rose": []}
    for i in range(0, len(x), BATCH):
        x0 = torch.from_numpy(np.ascontiguousarray(x[i : i + BATCH], dtype=np.float32)).to(device)
        yb = torch.from_numpy(y[i : i + BATCH]).to(device)
        adv = x0.clone()
        fooled = torch.zeros(len(x0), dtype=torch.bool, device=device)
        zero = torch.zeros(len(x0), dtype=torch.bool, device=device)
        start = torch.zeros(len(x0), device=device)
        best = torch.full((len(x0),), float("-inf"), device=device)
        active = torch.arange(len(x0), device=device)
        grad = torch.zeros(0, device=device)
        for k in range(steps + 1):
            xa = adv[active].clone().requires_grad_(k == 0)
            with torch.set_grad_enabled(k == 0):  # at the clean image: value and gradient in one pass
                logits = attacker(xa)
                value = margin(logits, yb[active])
            if k == 0:
                (grad,) = torch.autograd.grad(value.sum(), xa, allow_unused=True)
            with torch.no_grad():
                pred = logits.argmax(1) if surrogate is None else model(xa.detach()).argmax(1)
            wrong = pred != yb[active]
            fooled[active] |= wrong
            value = value.detach()
            if k == 0:
                start[active] = value
            else:
                best[active] = torch.maximum(best[active], value)
                active = active[~wrong]  # fooled after a step: done (its margin rose)
            if k == steps or active.numel() == 0:
                break
            if k > 0:  # the gradient of the samples still correct
                xa = adv[active].clone().requires_grad_(True)
                (grad,) = torch.autograd.grad(margin(attacker(xa), yb[active]).sum(), xa, allow_unused=True)
            grad = torch.zeros_like(xa) if grad is None else grad.detach()
            if k == 0:
                flat = grad.reshape(len(xa), -1)
                zero[active] = (flat == 0).all(dim=1) | ~torch.isfinite(flat).all(dim=1)
            moved = xa.detach() + step * torch.nan_to_num(grad, nan=0.0).sign()
            x_act = x0[active]
            moved = torch.minimum(torch.maximum(moved, x_act - eps), x_act + eps).clamp(0.0, 1.0)
            if torch.equal(moved, adv[active]):
                break  # nothing moves: every further step would be the same
            adv[active] = moved
        out["zero_gradient"].append(zero.cpu().numpy())
        out["fooled"].append(fooled.cpu().numpy())
        out["rose"].append((best > start).cpu().numpy())
    return {k: np.concatenate(v) if v else np.zeros(0, dtype=bool) for k, v in out.items()}


def gradient_checks(
    model: nn.Module, x: np.ndarray, y: np.ndarray, *, device: torch.device | None = None
) -> dict[str, np.ndarray]:
    """Two checks of the attacker's gradient at the clean images, per sample: ``zero_loss``
    (the cross-entropy input gradient is all zero or not finite) and ``cosine`` (between two
    evaluations of the margin's input gradient; 1 where both are zero)."""
    import torch

    device = device if device is not None else model_device(model)
    zero: list[np.ndarray] = []
    cosine: list[np.ndarray] = []

    def gradient(xb: torch.Tensor, yb: torch.Tensor, loss: str) -> torch.Tensor:
        xa = xb.clone().requires_grad_(True)
        logits = model(xa)
        value = torch.nn.functional.cross_entropy(logits, yb, reduction="none") if loss == "ce" else margin(logits, yb)
        (grad,) = torch.autograd.grad(value.sum(), xa, allow_unused=True)
        return torch.zeros_like(xa).flatten(1) if grad is None else grad.detach().flatten(1)

    for i in range(0, len(x), BATCH):
        xb = torch.from_numpy(np.ascontiguousarray(x[i : i + BATCH], dtype=np.float32)).to(device)
        yb = torch.from_numpy(y[i : i + BATCH]).to(device)
        ce = gradient(xb, yb, "ce")
        zero.append(((ce == 0).all(dim=1) | ~torch.isfinite(ce).all(dim=1)).cpu().numpy())
        a, b = (torch.nan_to_num(gradient(xb, yb, "margin")) for _ in range(2))
        norms = a.norm(dim=1) * b.norm(dim=1)
        cos = torch.where(norms > 0, (a * b).sum(dim=1) / norms.clamp_min(1e-30), torch.ones_like(norms))
        cosine.append(cos.cpu().numpy())
    empty = np.zeros(0)
    return {
        "zero_loss": np.concatenate(zero) if zero else empty.astype(bool),
        "cosine": np.concatenate(cosine) if cosine else empty,
    }


def probe_model(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    *,
    seed: int,
    surrogate: nn.Module | None = None,
    device: torch.device | None = None,
) -> dict[str, Any]:
    """Every probe of one detector on (x, y); a dict of the numbers of the probes table
    (``PROBE_COLUMNS`` in bench/core/schema.py; the shares' intervals are derived from them when
    the tables are assembled, bench/run/tables.py). The models must be on ``device`` (``None``:
    wherever ``model`` is)."""
    import torch

    device = device if device is not None else model_device(model)
    start = time.perf_counter()
    model.eval()
    if surrogate is not None:
        surrogate.eval()
    x = np.ascontiguousarray(x, dtype=np.float32)
    y = np.asarray(y, dtype=np.int64)
    with torch.random.fork_rng():  # leave the caller's global RNG (and the cells' seeding) alone
        torch.manual_seed(seed)
        correct = predict(model, x, device=device) == y
        run = margin_pgd(model, x[correct], y[correct], surrogate=surrogate, device=device)
        # after the PGD run: a random transform's draws before it stay as they were
        checks = gradient_checks(surrogate if surrogate is not None else model, x[correct], y[correct], device=device)
    zero, fooled, rose = run["zero_gradient"], run["fooled"], run["rose"]
    robust = np.zeros(len(y), dtype=bool)
    robust[np.flatnonzero(correct)] = ~fooled
    out: dict[str, Any] = {
        "n": len(y),
        "clean_correct": int(correct.sum()),
        "unbounded_eps": UNBOUNDED_EPS,
        "unbounded_steps": STEPS,
    }
    for name, flags in (
        ("zero_gradient_share", zero),
        ("unbounded_robust_accuracy", robust),
        ("loss_not_increasing_share", ~rose),
        ("zero_loss_gradient_share", checks["zero_loss"]),
        ("noisy_gradient_share", checks["cosine"] < NOISY_COSINE),
    ):
        out[name] = float(np.count_nonzero(flags) / flags.size) if flags.size else float("nan")
    out["seconds"] = time.perf_counter() - start
    return out


def probe(
    defense: Spec,
    gradient: str,
    dataset: Dataset,
    model: nn.Module,
    *,
    n_samples: int,
    seed: int,
    device: torch.device | None = None,
) -> dict[str, Any]:
    """The probes of a trained model under ``defense`` with the attacker's ``gradient``, on the
    test patches the model's cells attack (the deployed model, and the surrogate an oblivious
    attacker crafts on, as in bench/run/cells.py). ``device``: where the model runs (a copy is
    moved there; ``None``: the CPU, or wherever the model is)."""
    indices = attacked_subset(dataset, n_samples, seed)
    judged, surrogate = deployed(defense, gradient, on_device(model, device), seed)
    x, y = dataset.floats("test")[indices], dataset.y["test"][indices]
    return probe_model(judged, x, y, seed=seed, surrogate=surrogate, device=device)
