"""The columns a cell computes: its tidy rows and its per-sample rows.

Kept apart from bench/core/schema.py because the cell stage imports it (its fingerprint is in every
cell key, bench/core/fingerprint.py): the columns derived from the cells when the tables are
assembled - the rates' intervals, the trust flags - can change without recomputing a cell.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

# A cell's tidy rows: one per (epsilon, quantized, postprocess). The matrix table adds the derived
# columns (bench/core/schema.py, MATRIX_COLUMNS) and the `ensemble` rows.
CELL_COLUMNS: dict[str, str] = {
    "task": "string",  # canonical task name
    "detector": "string",  # canonical detector name, e.g. bayar[filters=3,truncate=3.0,width=16]
    "defense": "string",  # canonical defence name, e.g. grad-penalty[lambda=0.05]
    "attack": "string",  # canonical attack name, e.g. art.pgd[random_start=true,rel_stepsize=0.25,steps=10]
    "gradient": "string",  # the attacker's gradient: exact | oblivious | bpda | eot (the last three on input transforms); ensemble rows: any
    "library": "string",  # art | foolbox | ensemble
    "norm": "string",  # linf | l2
    "threat": "string",  # white-box | score | decision | control (non-adversarial) | ensemble
    "minimum_norm": "bool",  # one unbounded run per cell; every epsilon from each sample's smallest perturbation
    "quantized": "string",  # float: the attack's output; uint8: rounded to 8-bit levels inside the budget
    "postprocess": "string",  # none | jpeg95 | jpeg85 | jpeg75 (the uint8 images JPEG-compressed, PIL)
    "epsilon": "float64",  # budget in [0, 1] units, in `norm` (l2: e/255 * sqrt(C*H*W))
    "epsilon_255": "float64",  # the matrix's label e of the budget, in 8-bit units
    "n": "int64",  # attacked held-out test patches
    "clean_accuracy": "float64",  # rates: their 95% Wilson intervals are derived (bench/core/schema.py)
    "robust_accuracy": "float64",  # correct on clean AND on the worst adversarial found within epsilon
    "tpr": "float64",  # binary tasks: manipulated patches still detected under attack (robust among manipulated)
    "tnr": "float64",  # binary tasks: pristine patches still passed under attack (robust among pristine)
    "attack_success_rate": "float64",  # share of initially correct samples the attack flipped
    "perturbation_linf_max": "float64",  # largest Linf perturbation stored, [0, 1] units
    "perturbation_l2_mean": "float64",  # mean L2 perturbation over flipped samples, [0, 1] units
    # how visible the attack is (bench/run/quality.py, scikit-image's metrics): the mean over the flipped
    # samples of their `psnr` / `ssim` (samples table); NaN when none flipped (and on ensemble rows)
    "psnr_mean": "float64",  # dB, peak 1
    "ssim_mean": "float64",
    "attacked": "int64",  # samples attacked at this epsilon (survivors of the smaller epsilon)
    "queries": "float64",  # score/decision attacks: model queries per attacked sample at this epsilon
    "query_budget": "float64",  # score/decision attacks: the most queries per sample their parameters allow
    "seconds": "float64",  # attack time at this epsilon (a minimum-norm attack's one run: at the smallest)
    "train_seconds": "float64",  # training time of the detector x defence
    "seed": "int64",
    "cell": "string",  # content hash of the cell (cache key)
    "model": "string",  # content hash of the trained model
    "error": "string",  # empty when the cell succeeded
}

# samples.parquet: one row per (cell, epsilon, test sample).
SAMPLE_COLUMNS: dict[str, str] = {
    "task": "string",
    "detector": "string",
    "defense": "string",
    "attack": "string",
    "gradient": "string",
    "norm": "string",
    "quantized": "string",
    "postprocess": "string",
    "epsilon": "float64",
    "epsilon_255": "float64",
    "sample": "int64",  # index into the task's test split
    "source": "string",  # source photograph
    "label": "int64",
    "clean_pred": "int64",
    "adv_pred": "int64",
    "clean_correct": "bool",
    "adv_correct": "bool",  # still correct under attack (robust)
    "linf": "float64",  # perturbation norms, [0, 1] units (of the uint8 image in post-processed variants)
    "l2": "float64",
    # the same image against the clean one (bench/run/quality.py): PSNR in dB (peak 1; inf where the
    # image is the clean one) and SSIM (scikit-image's; 1 there)
    "psnr": "float64",
    "ssim": "float64",
    "min_norm": "float64",  # minimum-norm attacks: smallest adversarial perturbation found, in `norm`
    # (0: misclassified from the start; inf: none found); NaN for fixed-epsilon attacks
    "cell": "string",
}


def conform_columns(frame: pd.DataFrame, columns: dict[str, str], fill: dict[str, Any] | None = None) -> pd.DataFrame:
    """Order columns and cast dtypes to a schema; missing columns are an error, except those of
    ``fill``, which are added with its values."""
    absent = {c: v for c, v in (fill or {}).items() if c in columns and c not in frame.columns}
    if absent:
        frame = frame.assign(**absent)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"table lacks columns {missing}")
    return frame[list(columns)].astype(columns).reset_index(drop=True)
