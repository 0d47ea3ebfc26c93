"""Column schemas of the tidy tables: matrix, samples, models, probes and transfer (checked by the tests)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

# The trust flags, in the order of their columns (computed by bench/flags.py, explained in docs/flags.md).
FLAG_NAMES: tuple[str, ...] = (
    "non_monotone",
    "unbounded_not_zero",
    "single_beats_iterative",
    "blackbox_beats_whitebox",
    "zero_gradients",
    "loss_not_increasing",
    "libraries_disagree",
    "too_few_samples",
)

# Columns derived from the whole table after the cells (bench/flags.py, bench/stats.py): a cell's
# own rows, cached or fresh, lack them until the table is written; conform() fills them with
# these not-yet-computed values.
DERIVED: dict[str, Any] = {
    "attack_success_rate_low": float("nan"),
    "attack_success_rate_high": float("nan"),
    "flags": "",
    **{f"flag_{name}": False for name in FLAG_NAMES},
}

# matrix.csv / matrix.parquet: one row per (task, detector, defense, attack, gradient, epsilon,
# quantized, postprocess), plus one `ensemble` row per (task, detector, defense, norm, epsilon,
# quantized, postprocess): the worst case per sample over every attack run on that model.
MATRIX_COLUMNS: dict[str, str] = {
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
    "clean_accuracy": "float64",
    "clean_accuracy_low": "float64",  # 95% Wilson interval
    "clean_accuracy_high": "float64",
    "robust_accuracy": "float64",  # correct on clean AND on the worst adversarial found within epsilon
    "robust_accuracy_low": "float64",
    "robust_accuracy_high": "float64",
    "tpr": "float64",  # binary tasks: manipulated patches still detected under attack (robust among manipulated)
    "tpr_low": "float64",
    "tpr_high": "float64",
    "tnr": "float64",  # binary tasks: pristine patches still passed under attack (robust among pristine)
    "tnr_low": "float64",
    "tnr_high": "float64",
    "attack_success_rate": "float64",  # share of initially correct samples the attack flipped
    "attack_success_rate_low": "float64",  # 95% Wilson interval (derived when the table is written)
    "attack_success_rate_high": "float64",
    "perturbation_linf_max": "float64",  # largest Linf perturbation stored, [0, 1] units
    "perturbation_l2_mean": "float64",  # mean L2 perturbation over flipped samples, [0, 1] units
    "attacked": "int64",  # samples attacked at this epsilon (survivors of the smaller epsilon)
    "queries": "float64",  # score/decision attacks: model queries per attacked sample at this epsilon
    "query_budget": "float64",  # score/decision attacks: the most queries per sample their parameters allow
    "seconds": "float64",  # attack time at this epsilon (a minimum-norm attack's one run: at the smallest)
    "train_seconds": "float64",  # training time of the detector x defence
    "seed": "int64",
    "cell": "string",  # content hash of the cell (cache key)
    "model": "string",  # content hash of the trained model
    "error": "string",  # empty when the cell succeeded
    # trust flags (bench/flags.py, docs/flags.md), derived when the table is written
    "flags": "string",  # names of the flags raised on the row, joined by ","; empty when none
    **{f"flag_{name}": "bool" for name in FLAG_NAMES},
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
    "min_norm": "float64",  # minimum-norm attacks: smallest adversarial perturbation found, in `norm`
    # (0: misclassified from the start; inf: none found); NaN for fixed-epsilon attacks
    "cell": "string",
}

# models.csv: one row per trained (task, detector, defense).
MODEL_COLUMNS: dict[str, str] = {
    "task": "string",
    "detector": "string",
    "defense": "string",
    "test_accuracy": "float64",  # on the whole held-out test split
    "test_accuracy_low": "float64",
    "test_accuracy_high": "float64",
    "test_n": "int64",
    "val_accuracy": "float64",  # on the validation split (the epoch kept)
    "val_accuracy_low": "float64",  # 95% Wilson interval
    "val_accuracy_high": "float64",
    "parameters": "int64",  # trainable parameters
    "epochs": "int64",
    "train_seconds": "float64",
    "from_cache": "bool",
    "model": "string",
    "error": "string",
}


# probes.csv: one row per (task, detector, defense, gradient)
PROBE_COLUMNS: dict[str, str] = {
    "task": "string",
    "detector": "string",
    "defense": "string",
    "gradient": "string",
    "n": "int64",  # attacked test patches (the cells' subset)
    "clean_correct": "int64",  # of which classified correctly: the samples the two shares are over
    "zero_gradient_share": "float64",  # all-zero or non-finite margin gradient at the clean image
    "zero_gradient_share_low": "float64",  # 95% Wilson interval
    "zero_gradient_share_high": "float64",
    "unbounded_eps": "float64",  # Linf budget of the unbounded PGD, [0, 1] units
    "unbounded_steps": "int64",
    "unbounded_robust_accuracy": "float64",  # over n, as robust_accuracy in the matrix table
    "unbounded_robust_accuracy_low": "float64",
    "unbounded_robust_accuracy_high": "float64",
    "loss_not_increasing_share": "float64",  # margin never rose above its value at the clean image
    "loss_not_increasing_share_low": "float64",
    "loss_not_increasing_share_high": "float64",
    "seconds": "float64",  # probe time (when it was computed; also reported when served from the cache)
    "model": "string",
    "error": "string",  # empty when the probe ran
}

# transfer.csv / transfer.parquet: one row per (source cell, target model, epsilon).
TRANSFER_COLUMNS: dict[str, str] = {
    "task": "string",
    "source_detector": "string",  # the detector x defence the adversarial images were crafted on
    "source_defense": "string",
    "target_detector": "string",  # the detector x defence that scores them
    "target_defense": "string",
    "attack": "string",  # canonical name of the source cell's attack
    "white_box": "bool",  # target is the source model (the diagonal: the attack's own uint8/none rows)
    "epsilon_255": "float64",
    "n": "int64",  # attacked test patches (the source cell's)
    "target_clean_accuracy": "float64",  # target's accuracy on the clean patches
    "target_clean_accuracy_low": "float64",
    "target_clean_accuracy_high": "float64",
    "target_accuracy": "float64",  # target's accuracy on the 8-bit adversarial images (clean where none was found)
    "target_accuracy_low": "float64",
    "target_accuracy_high": "float64",
    "target_robust_accuracy": "float64",  # correct clean and adversarial (comparable to matrix robust_accuracy)
    "source_fooled": "int64",  # patches the source classified correctly clean and wrongly adversarial
    "transfer_n": "int64",  # of those, the patches the target classifies correctly clean
    "transfer_success_rate": "float64",  # share of transfer_n the target gets wrong on the adversarial image
    "transfer_success_rate_low": "float64",
    "transfer_success_rate_high": "float64",
    "source_cell": "string",  # cache keys
    "target_model": "string",
}


def conform(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """Order columns and cast dtypes to a schema (missing columns are an error, except the
    :data:`DERIVED` ones, which are filled with their not-yet-computed values)."""
    fill = {c: v for c, v in DERIVED.items() if c in columns and c not in frame.columns}
    if fill:
        frame = frame.assign(**fill)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"table lacks columns {missing}")
    return frame[list(columns)].astype(columns).reset_index(drop=True)


def conform_probes(frame: pd.DataFrame) -> pd.DataFrame:
    """The probes table in its schema (absent numbers NaN, absent counts 0)."""
    for column, dtype in PROBE_COLUMNS.items():
        if column not in frame.columns:
            frame[column] = 0 if dtype == "int64" else ("" if dtype == "string" else np.nan)
    ints = [c for c, t in PROBE_COLUMNS.items() if t == "int64"]
    frame[ints] = frame[ints].fillna(0)
    return frame[list(PROBE_COLUMNS)].astype(PROBE_COLUMNS).reset_index(drop=True)
