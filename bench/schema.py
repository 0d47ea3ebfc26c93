"""Column schemas of the tidy tables (documented in README.md, checked by the tests)."""

from __future__ import annotations

import pandas as pd

# matrix.csv / matrix.parquet: one row per (task, detector, defense, attack, epsilon).
MATRIX_COLUMNS: dict[str, str] = {
    "task": "string",  # canonical task name
    "detector": "string",  # canonical detector name, e.g. bayar[filters=3,truncate=3.0,width=16]
    "defense": "string",  # canonical defence name, e.g. grad-penalty[lambda=0.05]
    "attack": "string",  # canonical attack name, e.g. art.pgd[random_start=true,rel_stepsize=0.25,steps=10]
    "gradient": "string",  # the attacker's gradient: exact | bpda | eot (the last two on input transforms)
    "library": "string",  # art | foolbox
    "norm": "string",  # linf
    "epsilon": "float64",  # budget in [0, 1] units
    "epsilon_255": "float64",  # the same budget in 8-bit units
    "n": "int64",  # attacked held-out test patches
    "clean_accuracy": "float64",
    "clean_accuracy_low": "float64",  # 95% Wilson interval
    "clean_accuracy_high": "float64",
    "robust_accuracy": "float64",  # correct on clean AND on the worst adversarial found within epsilon
    "robust_accuracy_low": "float64",
    "robust_accuracy_high": "float64",
    "attack_success_rate": "float64",  # share of initially correct samples the attack flipped
    "perturbation_linf_max": "float64",  # largest Linf perturbation stored, [0, 1] units
    "perturbation_l2_mean": "float64",  # mean L2 perturbation over flipped samples, [0, 1] units
    "attacked": "int64",  # samples attacked at this epsilon (survivors of the smaller epsilon)
    "seconds": "float64",  # attack time at this epsilon
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
    "epsilon": "float64",
    "epsilon_255": "float64",
    "sample": "int64",  # index into the task's test split
    "source": "string",  # source photograph
    "label": "int64",
    "clean_pred": "int64",
    "adv_pred": "int64",
    "clean_correct": "bool",
    "adv_correct": "bool",  # still correct under attack (robust)
    "linf": "float64",  # perturbation norms, [0, 1] units
    "l2": "float64",
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
    "val_accuracy": "float64",
    "parameters": "int64",  # trainable parameters
    "epochs": "int64",
    "train_seconds": "float64",
    "from_cache": "bool",
    "model": "string",
    "error": "string",
}


def conform(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """Order columns and cast dtypes to a schema (missing columns are an error)."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"table lacks columns {missing}")
    return frame[list(columns)].astype(columns).reset_index(drop=True)
