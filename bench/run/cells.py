"""The computation of one cell: the attack swept over the epsilons, its images scored as 8-bit
and JPEG-compressed images, and the tidy rows and per-sample rows it yields.

A stage (bench/run/plan.py, ``STAGES``): everything this module and the modules it imports
compute determines a cell's numbers, so their fingerprint is part of every cell key. A pure
function of its inputs (no file is touched), so cells can run anywhere and in any order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bench.attacks import create_attack
from bench.attacks.base import l2_budget, linf_budget, quantize
from bench.core.columns import CELL_COLUMNS, SAMPLE_COLUMNS, conform_columns
from bench.core.inference import evaluation_copy, true_class_probability
from bench.run.postprocess import Variant, variants
from bench.run.subset import attacked_subset
from defenses import deployed

if TYPE_CHECKING:
    import torch
    from torch import nn

    from bench.attacks.base import AttackResult
    from bench.core.registry import Spec
    from bench.inputs.data import Dataset
    from bench.inputs.matrix import Matrix
    from bench.run.plan import Cell
    from bench.run.training import TrainedModel


def share(flags: np.ndarray) -> float:
    """The share of True in a boolean array (NaN when empty); its interval is derived later
    (bench/run/tables.py), from the count it stands for."""
    return float(np.count_nonzero(flags) / flags.size) if flags.size else float("nan")


def positive_class(classes: list[str]) -> int | None:
    """The manipulated class of a binary pristine-vs-manipulated task (None for other tasks)."""
    return 1 if len(classes) == 2 and classes[0] == "pristine" else None


def cell_epsilons(matrix: Matrix, norm: str, shape: tuple[int, ...]) -> tuple[float, ...]:
    """The matrix's budgets in an attack's norm, [0, 1] units (l2: scaled to the patch size)."""
    if norm == "l2":
        return tuple(l2_budget(e, shape) for e in matrix.epsilons_255)
    # the conversion lives in the attacks' base module, whose code is in every cell key (a
    # property of Matrix would not be: bench/inputs/matrix.py is no stage's import)
    return tuple(linf_budget(e) for e in matrix.epsilons_255)


def cell_tables(
    cell: Cell,
    spec: Spec,
    result: AttackResult,
    scored: list[Variant],
    indices: np.ndarray,
    sources: np.ndarray,
    trained: TrainedModel,
    seed: int,
    classes: list[str],
    eps_255: tuple[float, ...],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Tidy rows (one per epsilon and variant) and per-sample rows of a finished cell that ran
    the attack ``spec`` (the cell's own, or its BPDA version on an input transform). Rates only:
    their intervals are derived when the tables are assembled."""
    attack = create_attack(spec)
    budget = attack.query_budget()
    positive = positive_class(classes)
    y = result.y
    min_norm = result.min_norm.astype(np.float64) if result.min_norm is not None else np.full(len(y), np.nan)
    rows: list[dict[str, Any]] = []
    samples = []
    job = cell.model
    for variant in scored:
        clean = variant.clean_pred == y
        adv_correct = variant.adv_correct(y)
        for k, eps in enumerate(result.epsilons):
            robust = adv_correct[k]
            flipped = clean & ~robust
            # flipped with a changed image (a random input transform can flip an unchanged patch,
            # whose PSNR is inf): the patches the means of PSNR and SSIM are over
            measured = flipped & np.isfinite(variant.psnr[k])
            nan = float("nan")
            tpr = share(robust[y == positive]) if positive is not None else nan
            tnr = share(robust[y != positive]) if positive is not None else nan
            queries = float(result.queries[k]) if result.queries is not None else float("nan")
            rows.append(
                {
                    "task": str(job.task),
                    "detector": str(job.detector),
                    "defense": str(job.defense),
                    "attack": str(spec),
                    "gradient": cell.gradient,
                    "library": attack.library,
                    "norm": result.norm,
                    "threat": attack.threat,
                    "minimum_norm": attack.minimum_norm,
                    "quantized": variant.quantized,
                    "postprocess": variant.postprocess,
                    "epsilon": float(eps),
                    "epsilon_255": float(eps_255[k]),
                    "n": len(robust),
                    "clean_accuracy": share(clean),
                    "robust_accuracy": share(robust),
                    "tpr": tpr,
                    "tnr": tnr,
                    "attack_success_rate": flipped.sum() / clean.sum() if clean.any() else float("nan"),
                    "perturbation_linf_max": float(variant.linf[k].max(initial=0.0)),
                    "perturbation_l2_mean": float(variant.l2[k][flipped].mean()) if flipped.any() else float("nan"),
                    "psnr_mean": float(variant.psnr[k][measured].mean()) if measured.any() else nan,
                    "ssim_mean": float(variant.ssim[k][measured].mean()) if measured.any() else nan,
                    "attacked": int(result.attacked[k]),
                    "queries": queries,
                    "query_budget": float(budget) if budget is not None else float("nan"),
                    "seconds": float(result.seconds[k]),
                    "train_seconds": trained.meta.seconds,
                    "seed": seed,
                    "cell": cell.key,
                    "model": cell.model_key,
                    "error": "",
                }
            )
            samples.append(
                pd.DataFrame(
                    {
                        "task": str(job.task),
                        "detector": str(job.detector),
                        "defense": str(job.defense),
                        "attack": str(spec),
                        "gradient": cell.gradient,
                        "norm": result.norm,
                        "quantized": variant.quantized,
                        "postprocess": variant.postprocess,
                        "epsilon": float(eps),
                        "epsilon_255": float(eps_255[k]),
                        "sample": indices,
                        "source": sources,
                        "label": y,
                        "clean_pred": variant.clean_pred,
                        "adv_pred": variant.adv_pred[k],
                        "clean_correct": clean,
                        "adv_correct": robust,
                        "linf": variant.linf[k].astype(np.float64),
                        "l2": variant.l2[k].astype(np.float64),
                        "psnr": variant.psnr[k],
                        "ssim": variant.ssim[k],
                        "min_norm": min_norm,
                        "cell": cell.key,
                    }
                )
            )
    return conform_columns(pd.DataFrame(rows), CELL_COLUMNS), conform_columns(pd.concat(samples), SAMPLE_COLUMNS)


def compute_cell(
    cell: Cell, matrix: Matrix, dataset: Dataset, trained: TrainedModel, *, device: torch.device | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, np.ndarray] | None]:
    """Run one cell: the attack swept over the matrix's epsilons on the attacked test subset,
    then its images scored as 8-bit images and after JPEG compression (bench/run/postprocess.py).

    Returns the tidy rows, the per-sample rows and, for the cells that keep them, the cell's
    images as 8-bit arrays (see :func:`cell_images`) for the stages that need the images
    themselves (transferability, the gallery).

    ``device``: where the model runs (a copy of the trained model is moved there; ``None``: the
    CPU, or wherever the trained model is); everything returned is on the CPU.
    """
    indices = attacked_subset(dataset, matrix.n_samples, matrix.seed)
    x = dataset.floats("test")[indices]
    y = dataset.y["test"][indices]
    detector = evaluation_copy(trained.model, device=device)  # frozen, channels-last: the cell's scoring too
    model, surrogate = deployed(cell.model.defense, cell.gradient, detector, matrix.seed)
    spec = cell.runs
    attack = create_attack(spec)
    epsilons = cell_epsilons(matrix, attack.norm, tuple(x.shape[1:]))
    result = attack(model, x, y, epsilons, seed=matrix.seed, surrogate=surrogate, device=device)
    scored = variants(model, result, repr(attack), device=device)
    sources = dataset.source["test"][indices]
    classes = dataset.info["classes"]
    rows, samples = cell_tables(
        cell, spec, result, scored, indices, sources, trained, matrix.seed, classes, matrix.epsilons_255
    )
    images = cell_images(model, result, indices, matrix.epsilons_255, device=device) if cell.keeps_images else None
    return rows, samples, images


def cell_images(
    model: nn.Module,
    result: AttackResult,
    indices: np.ndarray,
    eps_255: tuple[float, ...],
    *,
    device: torch.device | None = None,
) -> dict[str, np.ndarray]:
    """A cell's images as published: the clean patches and the 8-bit adversarial images.

    Keys: ``sample`` (test-split indices, N), ``label`` (N), ``epsilon_255`` (E), ``x`` (uint8,
    N x C x H x W), ``adv`` (uint8, E x N x C x H x W; the clean image where the attack found
    nothing), and the attacked detector's probability of the true class on each, ``clean_prob``
    (N) and ``adv_prob`` (E x N).
    """
    x = result.x
    adv = np.stack([quantize(result.x_adv[k], x, float(e), result.norm) for k, e in enumerate(result.epsilons)])
    return {
        "sample": np.asarray(indices),
        "label": result.y,
        "epsilon_255": np.asarray(eps_255, dtype=np.float64),
        "x": np.rint(x * 255.0).astype(np.uint8),  # quantize puts every image on the 8-bit grid
        "adv": np.rint(adv * 255.0).astype(np.uint8),
        "clean_prob": true_class_probability(model, x, result.y, device=device),
        "adv_prob": np.stack([true_class_probability(model, a, result.y, device=device) for a in adv]),
    }
