"""What attacks cost, measured in one process on the matrix's own trained models.

``python -m bench costs`` answers three questions a reader of the tables asks:

- how close is each attack to the cost of the model evaluations it makes (measure ``attack /
  floor``)? Every attack runs through a counter (``bench.attacks.base.EvaluationCounter``) that
  records its calls of the model by batch size, with or without input gradient, the harness's
  own predictions included. The *floor* of the run is those calls priced at the time one call of
  that batch size takes on the same model copy (forward under ``torch.inference_mode``, or
  forward and backward to the input), each the best of :data:`REPEATS` calls measured here: what
  a hand-written loop making the same evaluations would take at best. ``ratio`` = seconds / floor;
  what is above 1 is bookkeeping, the library's and ours. Bounds: :data:`FLOOR_BOUNDS`;

- does sweeping several epsilons cost much more than attacking at the largest one? A
  fixed-epsilon sweep attacks, at each epsilon, only the samples still robust at the previous
  one (``bench/attacks/base.py``), so on an undefended detector, where almost nothing survives
  the smallest epsilon, it should cost little more than one epsilon; on an adversarially
  trained detector survivors are many and the ratio grows;
- do the white-box minimum-norm attacks, run once per cell, give the same curve as a
  fixed-epsilon PGD sweep in the same norm, and at what cost relative to one PGD run at a single
  epsilon? Two distances between the curves are reported: ``max_gap``, the largest difference
  at the same epsilon, and ``shape_gap``, the same after rescaling the minimum-norm attack's
  norms by the factor ``norm_scale`` in [1/2, 2] that fits PGD's curve best (the curve from one
  run is continuous in epsilon: robust at e iff no example of norm <= e was found). Same shape
  means ``shape_gap`` <= :data:`SHAPE_TOLERANCE`: a minimum-norm attack that finds norms up to
  twice (or half) PGD's has PGD's curve, shifted; one that stalls on part of the samples has a
  plateau no rescaling removes.

Every timing is taken in this process, back to back on the same samples, as the best of
:data:`REPEATS` runs, so the ratios compare like with like (never compare absolute seconds across
machines). The table is printed and written to ``results/<profile>/costs.csv``.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bench.attacks import attack_class, create_attack
from bench.attacks.base import within
from bench.core.devices import on_device
from bench.core.inference import evaluation_copy, predict
from bench.inputs.photos import builtin_source
from bench.run.cells import cell_epsilons
from bench.run.execute import obtain_dataset, obtain_model
from bench.run.plan import plan_models
from bench.run.store import Store
from bench.run.subset import attacked_subset
from bench.run.training import train
from defenses import is_input_transform

if TYPE_CHECKING:
    import torch
    from torch import nn

    from bench.attacks.base import Attack, AttackResult
    from bench.core.registry import Spec
    from bench.inputs.matrix import Matrix

PGD = {"linf": "art.pgd", "l2": "art.pgd-l2"}
MEASURES = ("floor", "pgd", "sweep", "minimum-norm")  # what measure_costs can measure
PGD_STEPS, PGD_REL_STEP, PGD_EPS_255 = 10, 0.25, 2  # the PGD-10 compared with hand-written PyTorch
PGD_REPEATS = 5  # interleaved repetitions of each contender; the median is reported
PGD_BATCH = 256  # the libraries' batch size: one batch
# the ratio to the floor an attack of each kind should stay within (white-box: gradient attacks run
# with a budget; the others: minimum-norm, score- and decision-based, whose libraries do more
# bookkeeping per model call)
FLOOR_BOUNDS = {"white-box": 1.25, "other": 2.0}
REPEATS = 3  # every timing is the best of this many runs
PRICE_REPEATS = 7  # a call's price is the best of this many calls (single calls vary more than whole runs)
SHAPE_TOLERANCE = 0.05  # same shape: largest difference after the best norm scale, in accuracy
NORM_SCALES = 2.0 ** np.linspace(-1.0, 1.0, 41)  # rescalings of the minimum norms tried, 1/2 to 2


def _timed(
    attack: Attack,
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    eps: tuple[float, ...],
    seed: int,
    device: torch.device | None = None,
) -> tuple[AttackResult, float]:
    """The attack's result and its best wall time of :data:`REPEATS` runs (the attacks are seeded, so
    every run gives the same result; the best of a few runs is the usual guard against a one-off
    stall of a shared machine, and the first run also pays one-off warm-up costs)."""
    best = np.inf
    for _ in range(REPEATS):
        start = time.perf_counter()
        out = attack(model, x, y, eps, seed=seed, device=device)
        best = min(best, time.perf_counter() - start)
    return out, best


def measure_costs(
    matrix: Matrix,
    *,
    store: Store,
    defenses: tuple[Spec, ...] | None = None,
    measures: tuple[str, ...] = MEASURES,
    progress: Callable[[str], None] = lambda _: None,
    device: torch.device | None = None,
) -> pd.DataFrame:
    """Attack-versus-floor, sweep-versus-largest-epsilon and minimum-norm-versus-PGD costs on every
    model of a matrix (``measures``: which of :data:`MEASURES`).

    Models come from the store (trained first if missing, like a run). ``defenses`` restricts the
    training-time defences measured (input transforms are skipped: their cost is the wrapped
    detector's). ``device``: where the attacks run (``None``: the CPU).
    """
    import torch

    device = device if device is not None else torch.device("cpu")
    source = builtin_source()
    # white-box minimum-norm attacks; the decision-based ones (HopSkipJump, Boundary) are minimum-norm
    # too, but their cost is set by their query budgets, not by a number of gradient steps
    minimum = [a for a in matrix.attacks if (c := attack_class(a.name)).minimum_norm and c.threat == "white-box"]
    rows: list[dict[str, Any]] = []
    dataset = None
    for job in plan_models(matrix, source):
        if is_input_transform(job.defense) or (defenses is not None and job.defense not in defenses):
            continue
        if job.training_seed != matrix.training_seeds[0]:  # an attack's cost does not depend on the training seed
            continue
        if dataset is None or dataset.key != job.dataset_key:
            dataset = obtain_dataset(job.task, source, matrix.data, matrix.seed, store, job.dataset_key)
        trained = obtain_model(job, dataset, matrix, store, device=device)
        idx = attacked_subset(dataset, matrix.n_samples, matrix.seed)
        x, y = dataset.floats("test")[idx], dataset.y["test"][idx]
        model = on_device(trained.model, device)
        base = {
            "task": str(job.task),
            "detector": str(job.detector),
            "defense": str(job.defense),
            "n": len(y),
            "clean_accuracy": float((predict(model, x, device=device) == y).mean()),
        }
        if "floor" in measures:
            rows += _floors(matrix, model, x, y, base, job.label, progress, device)
        if "pgd" in measures:
            rows += _pgd_against_torch(model, x[:PGD_BATCH], y[:PGD_BATCH], base, job.label, progress, device)
        if "sweep" not in measures and "minimum-norm" not in measures:
            continue
        curves = {}
        for norm in ("linf", "l2"):
            if norm == "l2" and not any(attack_class(a.name).norm == "l2" for a in minimum):
                continue
            pgd = create_attack(PGD[norm])
            eps = cell_epsilons(matrix, norm, tuple(x.shape[1:]))
            _, t_single = _timed(pgd, model, x, y, eps[-1:], matrix.seed, device)
            sweep, t_sweep = _timed(pgd, model, x, y, eps, matrix.seed, device)
            curves[norm] = sweep.robust_accuracy
            if "sweep" in measures:
                rows.append(
                    {
                        **base,
                        "measure": "sweep / largest epsilon",
                        "attack": PGD[norm],
                        "norm": norm,
                        "seconds": t_sweep,
                        "reference_seconds": t_single,
                        "ratio": t_sweep / t_single,
                        "attacked": " ".join(str(a) for a in sweep.attacked),
                        "curve": _curve(sweep.robust_accuracy),
                        "pgd_curve": "",
                        "max_gap": np.nan,
                    }
                )
                progress(
                    f"{job.label}: {PGD[norm]} sweep {t_sweep:.1f}s vs largest eps alone {t_single:.1f}s "
                    f"({t_sweep / t_single:.2f}x); survivors attacked {sweep.attacked.tolist()}"
                )
            for spec in minimum if "minimum-norm" in measures else []:
                attack = create_attack(spec)
                if attack.norm != norm:
                    continue
                result, t_min = _timed(attack, model, x, y, eps, matrix.seed, device)
                gap = float(np.abs(result.robust_accuracy - curves[norm]).max())
                scale, shape_gap = shape_agreement(result, curves[norm])
                rows.append(
                    {
                        **base,
                        "measure": "minimum-norm run / one PGD run",
                        "attack": str(spec),
                        "norm": norm,
                        "seconds": t_min,
                        "reference_seconds": t_single,
                        "ratio": t_min / t_single,
                        "attacked": str(int(result.attacked[0])),
                        "curve": _curve(result.robust_accuracy),
                        "pgd_curve": _curve(curves[norm]),
                        "max_gap": gap,
                        "norm_scale": scale,
                        "shape_gap": shape_gap,
                        "same_shape": shape_gap <= SHAPE_TOLERANCE,
                    }
                )
                progress(
                    f"{job.label}: {spec} {t_min:.1f}s = {t_min / t_single:.2f}x one PGD run; curve "
                    f"{_curve(result.robust_accuracy)} vs PGD sweep {_curve(curves[norm])} (max gap {gap:.3f}; "
                    f"norms x {scale:.2f}: shape gap {shape_gap:.3f}, "
                    f"{'same shape' if shape_gap <= SHAPE_TOLERANCE else 'NOT the same shape'})"
                )
    return pd.DataFrame(rows)


def hand_written_pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    steps: int = PGD_STEPS,
    rel_step: float = PGD_REL_STEP,
) -> torch.Tensor:
    """Linf PGD with a random start written directly in PyTorch: the baseline the libraries' PGD
    is timed against (cross-entropy, sign steps of ``rel_step * eps``, projection on the ball and
    [0, 1] after every step)."""
    import torch

    step = rel_step * eps
    adv = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
    for _ in range(steps):
        adv.requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(model(adv), y)
        (grad,) = torch.autograd.grad(loss, adv)
        adv = torch.min(torch.max(adv.detach() + step * grad.sign(), x - eps), x + eps).clamp(0, 1)
    return adv


def _pgd_against_torch(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    base: dict[str, Any],
    label: str,
    progress: Callable[[str], None],
    device: torch.device | None,
) -> list[dict[str, Any]]:
    """ART's and Foolbox's Linf PGD-10 (one ``run`` at one epsilon, one batch) against the same PGD
    written in PyTorch, on the same model copy: :data:`PGD_REPEATS` interleaved repetitions after
    one untimed warm-up round, the median of each."""
    import torch

    copy_ = evaluation_copy(model, device=device)
    eps = PGD_EPS_255 / 255
    xt, yt = torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.asarray(y, dtype=np.int64))
    if device is not None:
        xt, yt = xt.to(device), yt.to(device)
    contenders: dict[str, Callable[[], object]] = {"torch": lambda: hand_written_pgd(copy_, xt, yt, eps)}
    for name in ("art.pgd", "foolbox.pgd"):
        attack = create_attack(f"{name}[random_start=true,rel_stepsize={PGD_REL_STEP},steps={PGD_STEPS}]")
        handle = attack.prepare(copy_, tuple(x.shape[1:]), 2, device=device)
        contenders[name] = functools.partial(attack.run, handle, x, y, eps)  # type: ignore[attr-defined]
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for repeat in range(PGD_REPEATS + 1):
        for name, run in contenders.items():
            start = time.perf_counter()
            run()
            if repeat:  # the first round warms up
                times[name].append(time.perf_counter() - start)
    median = {name: float(np.median(t)) for name, t in times.items()}
    rows = []
    for name in ("art.pgd", "foolbox.pgd"):
        rows.append(
            {
                **base,
                "measure": "PGD-10 / hand-written PyTorch",
                "attack": name,
                "norm": "linf",
                "n": len(x),
                "seconds": median[name],
                "reference_seconds": median["torch"],
                "ratio": median[name] / median["torch"],
                "repeats": PGD_REPEATS,
            }
        )
        progress(
            f"{label}: {name} PGD-{PGD_STEPS} {median[name]:.2f}s vs hand-written PyTorch {median['torch']:.2f}s "
            f"({median[name] / median['torch']:.2f}x; median of {PGD_REPEATS} interleaved runs, {len(x)} patches)"
        )
    return rows


def _floors(
    matrix: Matrix,
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    base: dict[str, Any],
    label: str,
    progress: Callable[[str], None],
    device: torch.device | None,
) -> list[dict[str, Any]]:
    """One run of every attack of the matrix on one model against the floor of its model calls."""
    prices = CallPrices(evaluation_copy(model, device=device), x, device)
    for spec in matrix.attacks:  # untimed, on two samples: the libraries' imports and first calls
        attack = create_attack(spec)
        attack(model, x[:2], y[:2], cell_epsilons(matrix, attack.norm, tuple(x.shape[1:])), seed=0, device=device)
    rows = []
    for spec in matrix.attacks:
        attack = create_attack(spec)
        eps = cell_epsilons(matrix, attack.norm, tuple(x.shape[1:]))
        start = time.perf_counter()
        result = attack(model, x, y, eps, seed=matrix.seed, device=device)
        seconds = time.perf_counter() - start
        calls = result.evaluations or {}
        floor = prices.floor(calls)
        kind = "white-box" if attack.threat == "white-box" and not attack.minimum_norm else "other"
        bound = FLOOR_BOUNDS[kind]
        forward = sum(b * c for (b, g), c in calls.items() if not g)
        gradient = sum(b * c for (b, g), c in calls.items() if g)
        # score/decision attacks: the queries of the whole sweep per sample attacked at the first epsilon
        queries = (
            float((result.queries * result.attacked).sum()) / max(1, int(result.attacked[0]))
            if result.queries is not None
            else np.nan
        )
        rows.append(
            {
                **base,
                "measure": "attack / floor",
                "attack": str(spec),
                "norm": attack.norm,
                "threat": attack.threat,
                "minimum_norm": attack.minimum_norm,
                "seconds": seconds,
                "floor_seconds": floor,
                "ratio": seconds / floor if floor > 0 else np.nan,
                "forward_images": forward,
                "gradient_images": gradient,
                "queries": float(queries),
                "bound": bound,
                "within_bound": bool(seconds <= bound * floor),
                "attacked": " ".join(str(a) for a in result.attacked),
                "curve": _curve(result.robust_accuracy),
            }
        )
        progress(
            f"{label}: {spec} {seconds:.1f}s against a floor of {floor:.1f}s ({seconds / max(floor, 1e-9):.2f}x, "
            f"bound {bound}x); {forward} images forward, {gradient} with input gradient"
        )
    return rows


class CallPrices:
    """The time one call of a model takes, by (batch size, with input gradient): the best of
    :data:`PRICE_REPEATS` calls after one untimed call, on ``x``'s first images (repeated up to the
    batch size), measured the first time a batch size is asked for. A call with input gradient is a forward pass and a
    backward pass to the input (the weights are frozen, as in every attack)."""

    def __init__(self, model: nn.Module, x: np.ndarray, device: torch.device | None) -> None:
        self.model, self.x, self.device = model, x, device
        self.seconds: dict[tuple[int, bool], float] = {}

    def floor(self, calls: dict[tuple[int, bool], int]) -> float:
        """The seconds the calls take at best."""
        return float(sum(count * self.price(batch, gradient) for (batch, gradient), count in calls.items()))

    def price(self, batch: int, gradient: bool) -> float:
        if (batch, gradient) not in self.seconds:
            self.seconds[batch, gradient] = self._measure(batch, gradient)
        return self.seconds[batch, gradient]

    def _measure(self, batch: int, gradient: bool) -> float:
        import torch

        tensor = _batch(self.x, batch, self.device)
        best = np.inf
        for repeat in range(PRICE_REPEATS + 1):  # the first call warms up (allocator, kernels for this shape)
            start = time.perf_counter()
            _call(self.model, tensor, gradient)
            if self.device is not None and self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            if repeat:
                best = min(best, time.perf_counter() - start)
        return float(best)


def _batch(x: np.ndarray, batch: int, device: torch.device | None) -> torch.Tensor:
    """``x``'s first images, repeated up to ``batch``, as a float32 tensor on ``device``."""
    import torch

    tensor = torch.from_numpy(np.ascontiguousarray(np.resize(x, (batch, *x.shape[1:])), dtype=np.float32))
    return tensor.to(device) if device is not None else tensor


def _call(model: nn.Module, tensor: torch.Tensor, gradient: bool) -> None:
    """One model call: a forward under ``torch.inference_mode``, or with ``gradient`` a forward and
    a backward pass to the input."""
    import torch

    if gradient:
        inputs = tensor.clone().requires_grad_(True)
        torch.autograd.grad(model(inputs).sum(), inputs)
    else:
        with torch.inference_mode():
            model(tensor)


def replay(
    model: nn.Module, x: np.ndarray, calls: dict[tuple[int, bool], int], device: torch.device | None = None
) -> None:
    """A hand-written PyTorch loop making the given model calls: by (batch size, with input
    gradient), a forward under ``torch.inference_mode`` or a forward and a backward pass to the
    input, on ``x``'s first images repeated up to the batch size. The baseline an attack's time is
    compared with in tests/test_benchmarks.py (the same evaluations, no bookkeeping)."""
    for (batch, gradient), count in calls.items():
        tensor = _batch(x, batch, device)
        for _ in range(count):
            _call(model, tensor, gradient)


def shape_agreement(result: AttackResult, pgd_curve: np.ndarray) -> tuple[float, float]:
    """The norm scale in [1/2, 2] that brings a minimum-norm attack's curve closest to PGD's, and
    the largest difference left (robust accuracy at the sweep's epsilons). A scale of 2 means the
    attack's norms are about twice those PGD needs.

    ``result`` is a minimum-norm attack's, with each sample's smallest norm found; its robust
    accuracy at eps after rescaling by s is the share of samples correct when clean with no
    example of norm <= s x eps, i.e. its continuous curve read at s x eps. Ties go to the scale
    nearest 1.
    """
    if result.min_norm is None:
        raise ValueError("shape_agreement needs a minimum-norm attack's result")
    correct = result.clean_correct
    best = (1.0, np.inf)
    for s in sorted(NORM_SCALES, key=lambda v: abs(np.log(v))):
        curve = np.array([np.mean(correct & ~within(result.min_norm, float(s * e))) for e in result.epsilons])
        gap = float(np.abs(curve - pgd_curve).max())
        if gap < best[1] - 1e-12:
            best = (float(s), gap)
    return best


def _curve(values: np.ndarray) -> str:
    return " ".join(f"{v:.3f}" for v in values)


def measure_training_costs(
    matrix: Matrix,
    *,
    store: Store,
    epochs: int = 3,
    progress: Callable[[str], None] = lambda _: None,
    device: torch.device | None = None,
) -> pd.DataFrame:
    """Training time of every (task, detector, training-time defence) of a matrix against the
    undefended detector's, trained back to back in this process for ``epochs`` epochs each.

    The per-epoch cost of a defence does not depend on the number of epochs (the trainer does
    the same work every epoch), so a few epochs measure the ratio that the full training shows,
    without tying the machine up for the whole defence zoo. Only the datasets are stored.
    ``device``: where the models train (``None``: the CPU).
    """
    source = builtin_source()
    config = dataclasses.replace(matrix.training, epochs=epochs)
    defenses = [d for d in matrix.defenses if not is_input_transform(d)]
    rows: list[dict[str, Any]] = []
    for task in matrix.tasks:
        dataset = obtain_dataset(task, source, matrix.data, matrix.seed, store)
        for detector in matrix.detectors:
            base = None
            for defense in sorted(defenses, key=lambda d: d.name != "none"):  # the undefended detector first
                _, meta = train(detector, dataset, defense, config, matrix.seed, device=device)
                per_epoch = meta.seconds / epochs
                base = base if base is not None else (per_epoch if defense.name == "none" else np.nan)
                rows.append(
                    {
                        "task": str(task),
                        "detector": str(detector),
                        "defense": str(defense),
                        "epochs": epochs,
                        "seconds": meta.seconds,
                        "seconds_per_epoch": per_epoch,
                        "ratio": per_epoch / base,
                    }
                )
                progress(f"{task} | {detector} | {defense}: {per_epoch:.1f}s per epoch, {per_epoch / base:.2f}x none")
    return pd.DataFrame(rows)
