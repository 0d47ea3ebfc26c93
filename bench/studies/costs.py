"""What attacks cost, measured in one process on the matrix's own trained models.

``python -m bench costs`` answers two questions a reader of the tables asks:

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
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bench.attacks import attack_class, create_attack
from bench.attacks.base import within
from bench.core.devices import on_device
from bench.core.inference import predict
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
REPEATS = 3  # every timing is the best of this many runs
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
    progress: Callable[[str], None] = lambda _: None,
    device: torch.device | None = None,
) -> pd.DataFrame:
    """Sweep-versus-largest-epsilon and minimum-norm-versus-PGD costs on every model of a matrix.

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
        curves = {}
        for norm in ("linf", "l2"):
            if norm == "l2" and not any(attack_class(a.name).norm == "l2" for a in minimum):
                continue
            pgd = create_attack(PGD[norm])
            eps = cell_epsilons(matrix, norm, tuple(x.shape[1:]))
            _, t_single = _timed(pgd, model, x, y, eps[-1:], matrix.seed, device)
            sweep, t_sweep = _timed(pgd, model, x, y, eps, matrix.seed, device)
            curves[norm] = sweep.robust_accuracy
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
            for spec in minimum:
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
