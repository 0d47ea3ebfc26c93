"""Column schemas of the tidy tables: matrix, samples, models, probes and transfer (checked by the tests).

A cell's own columns are in bench/core/columns.py (the cell stage imports that module only); the
matrix table adds the columns derived when the tables are assembled (bench/run/tables.py): the
95% Wilson interval of every rate and the trust flags (bench/run/flags.py, docs/flags.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from bench.core.columns import CELL_COLUMNS, conform_columns
from bench.core.columns import SAMPLE_COLUMNS as CELL_SAMPLE_COLUMNS

__all__ = [
    "ALL_SEEDS",
    "DERIVED",
    "DEVICE",
    "FAILURE_FLAGS",
    "FLAG_NAMES",
    "INTERVAL_RATES",
    "MATRIX_COLUMNS",
    "MODEL_COLUMNS",
    "PRECISION_FLAGS",
    "PROBE_COLUMNS",
    "SAMPLE_COLUMNS",
    "THREADS",
    "TRAINING_SEED",
    "TRANSFER_COLUMNS",
    "conform",
    "conform_probes",
    "fill_training_seed",
    "flagged_rows",
    "headline",
    "several_seeds",
]

# The trust flags, in the order of their columns (computed by bench/run/flags.py, explained in docs/flags.md).
FLAG_NAMES: tuple[str, ...] = (
    "non_monotone",
    "unbounded_not_zero",
    "single_beats_iterative",
    "blackbox_beats_whitebox",
    "zero_gradients",
    "zero_loss_gradients",
    "noisy_gradients",
    "loss_not_increasing",
    "weaker_than_reference",
    "not_converged",
    "libraries_disagree",
    "seed_sensitive",
    "too_few_samples",
)

# Severity (docs/flags.md): a *failure* of the evaluation - the number may be wrong, a stronger or
# adaptive attack could break it - or a *limit of precision* - the number is what the attacks
# achieved, but too uncertain to compare. `run --strict` exits 3 on failures; `--strict=all` on both.
PRECISION_FLAGS: tuple[str, ...] = ("seed_sensitive", "too_few_samples")
FAILURE_FLAGS: tuple[str, ...] = tuple(name for name in FLAG_NAMES if name not in PRECISION_FLAGS)


def flagged_rows(table: pd.DataFrame, *, include_precision: bool = False) -> pd.Series:
    """Rows raising a failure flag (with ``include_precision``: any flag), from the ``flag_*``
    columns a table has (or its ``flags`` names, where a table read back has only those)."""
    names = FLAG_NAMES if include_precision else FAILURE_FLAGS
    columns = [f"flag_{name}" for name in names if f"flag_{name}" in table]
    if columns:
        return table[columns].astype(bool).any(axis=1)
    if "flags" in table:
        wanted = set(names)
        return table["flags"].fillna("").astype(str).map(lambda s: bool(wanted & set(s.split(","))))
    return pd.Series(False, index=table.index)


# The rates of the matrix table that carry a 95% Wilson interval (<rate>_low, <rate>_high).
INTERVAL_RATES = ("clean_accuracy", "robust_accuracy", "tpr", "tnr", "attack_success_rate")

# Columns derived from the cells' rows when the tables are assembled (bench/run/tables.py): a
# cell's own rows, cached or fresh, lack them; conform() fills them with these not-yet-computed
# values until they are computed.
DERIVED: dict[str, Any] = {
    **{f"{rate}_{end}": float("nan") for rate in INTERVAL_RATES for end in ("low", "high")},
    # the reference attack's robust accuracy (weaker_than_reference) and the convergence run's
    # (not_converged) on the same samples, beside each row they judge (bench/run/flags.py)
    **{column: float("nan") for column in ("reference_robust_accuracy", "converged_robust_accuracy")},
    # the training seed (set when the tables are assembled; a table written before the column
    # existed had one training, with its ``seed``: :func:`conform` fills that in) and the
    # across-seed columns, set on the rows aggregated over the seeds (bench/run/seeds.py)
    "training_seed": "",
    "seeds": 1,
    **{column: float("nan") for column in ("robust_accuracy_seed_min", "robust_accuracy_seed_max")},
    "flags": "",  # names of the flags raised on the row, joined by ","; empty when none
    **{f"flag_{name}": False for name in FLAG_NAMES},
    # models table: whether the suite trained the model (false: a network trained elsewhere,
    # detectors/_networks.py); tables written before the column held trained models only
    "trained": True,
}


def _matrix_columns() -> dict[str, str]:
    """The cell's columns with each rate's interval right after it, then the trust flags."""
    out: dict[str, str] = {}
    for name, dtype in CELL_COLUMNS.items():
        out[name] = dtype
        if name in INTERVAL_RATES:
            out.update({f"{name}_low": "float64", f"{name}_high": "float64"})
        if name == "robust_accuracy":
            out.update({"reference_robust_accuracy": "float64", "converged_robust_accuracy": "float64"})
            out.update({"robust_accuracy_seed_min": "float64", "robust_accuracy_seed_max": "float64"})
        if name == "seed":
            out.update({TRAINING_SEED: "string", "seeds": "int64"})
        if name == "model":
            out[DEVICE], out[THREADS] = "string", "Int64"
    out["flags"] = "string"
    out.update({f"flag_{name}": "bool" for name in FLAG_NAMES})
    return out


# Every table has a ``training_seed`` column: the seed the row's model was trained with, as text
# (a matrix's ``seeds``; without them its ``seed``). With several seeds the matrix table adds one row
# per (model minus its seed, attack, gradient, epsilon, variant) with ``training_seed`` ALL_SEEDS:
# the mean over the seeds, the across-seed range beside it and an interval spanning every seed's
# (bench/run/seeds.py); ``seeds`` counts the seeds behind a row (1 on a seed's own row).
TRAINING_SEED = "training_seed"
ALL_SEEDS = "all"

# Every table has a ``device`` column: the device kind ("cpu", "cuda") the run trained and attacked
# on (bench/core/devices.py). It is set when the tables are assembled - a cell's own stored rows
# lack it; its key holds the kind - and a table written before the column existed reads as "cpu".
DEVICE = "device"

# Every table of a run (matrix, samples, models, probes, transfer) has a ``threads`` column too:
# torch's intra-op thread count of the run's cells, probes and transfer pairs (in their keys: attack
# results depend on it, docs/design.md "Thread count"); the models table has the trainings'
# (TRAINING_THREADS). A table written before the column existed reads it as missing (<NA>).
THREADS = "threads"

# samples.parquet: one row per (cell, epsilon, test sample); a cell's own rows (bench/core/columns.py)
# and the run's device kind.
SAMPLE_COLUMNS: dict[str, str] = {**CELL_SAMPLE_COLUMNS, TRAINING_SEED: "string", DEVICE: "string", THREADS: "Int64"}

# matrix.csv / matrix.parquet: one row per (task, detector, defense, attack, gradient, epsilon,
# quantized, postprocess), plus one `ensemble` row per (task, detector, defense, norm, epsilon,
# quantized, postprocess): the worst case per sample over every attack run on that model.
MATRIX_COLUMNS: dict[str, str] = _matrix_columns()

# models.csv: one row per trained (task, detector, defense).
MODEL_COLUMNS: dict[str, str] = {
    "task": "string",
    "detector": "string",
    "defense": "string",
    TRAINING_SEED: "string",
    "test_accuracy": "float64",  # on the whole held-out test split
    "test_accuracy_low": "float64",
    "test_accuracy_high": "float64",
    "test_n": "int64",
    "val_accuracy": "float64",  # on the validation split (the epoch kept)
    "val_accuracy_low": "float64",  # 95% Wilson interval
    "val_accuracy_high": "float64",
    "parameters": "int64",  # trainable parameters
    "epochs": "int64",
    "train_seconds": "float64",  # a network trained elsewhere: the seconds loading and measuring it took
    "from_cache": "bool",
    "trained": "bool",  # trained by the suite; false: a network trained elsewhere (torchscript, state-dict)
    "model": "string",
    "device": "string",
    "threads": "Int64",  # torch threads of the training (TRAINING_THREADS)
    "error": "string",
}


# probes.csv: one row per (task, detector, defense, gradient)
PROBE_COLUMNS: dict[str, str] = {
    "task": "string",
    "detector": "string",
    "defense": "string",
    TRAINING_SEED: "string",
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
    "zero_loss_gradient_share": "float64",  # all-zero or non-finite cross-entropy gradient at the clean image
    "zero_loss_gradient_share_low": "float64",
    "zero_loss_gradient_share_high": "float64",
    "noisy_gradient_share": "float64",  # two margin gradients at the clean image with cosine below 0.5
    "noisy_gradient_share_low": "float64",
    "noisy_gradient_share_high": "float64",
    "seconds": "float64",  # probe time (when it was computed; also reported when served from the cache)
    "model": "string",
    "device": "string",
    "threads": "Int64",
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
    TRAINING_SEED: "string",  # of both models: images are scored on the models of their own seed
    "source_cell": "string",  # cache keys
    "target_model": "string",
    "device": "string",
    "threads": "Int64",
}


def several_seeds(table: pd.DataFrame) -> bool:
    """Whether a table holds the rows of more than one training seed."""
    if TRAINING_SEED not in table:
        return False
    seeds = table[TRAINING_SEED]
    return bool(seeds[seeds != ALL_SEEDS].nunique() > 1)


def headline(table: pd.DataFrame) -> pd.DataFrame:
    """The rows a figure, page, LaTeX table or check shows: those across the training seeds where
    a table has them (``training_seed`` = ALL_SEEDS), else every row (one seed)."""
    if TRAINING_SEED not in table:
        return table
    across = table[TRAINING_SEED] == ALL_SEEDS
    return table[across] if across.any() else table


def conform(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """Order columns and cast dtypes to a schema (missing columns are an error, except the
    :data:`DERIVED` ones, which are filled with their not-yet-computed values)."""
    frame = conform_columns(frame, columns, DERIVED)
    if TRAINING_SEED not in columns:
        return frame
    return fill_training_seed(frame).astype({TRAINING_SEED: columns[TRAINING_SEED]})


def fill_training_seed(frame: pd.DataFrame, seed: object = None) -> pd.DataFrame:
    """``frame`` with its ``training_seed`` set where it lacks one - a table written before the
    column existed, or rows not yet assigned one: one training, with the run's seed (the row's
    ``seed``, else ``seed``, else left empty)."""
    default = str(seed) if seed is not None else ""
    run_seed = frame["seed"].astype(str) if "seed" in frame else pd.Series(default, index=frame.index, dtype=object)
    if TRAINING_SEED not in frame:
        return frame.assign(**{TRAINING_SEED: run_seed})
    current = frame[TRAINING_SEED].astype(object).where(frame[TRAINING_SEED].notna(), "").astype(str)
    filled = current.where(current != "", run_seed)
    return frame.assign(**{TRAINING_SEED: filled})


def conform_probes(frame: pd.DataFrame) -> pd.DataFrame:
    """The probes table in its schema (absent numbers NaN, absent counts 0)."""
    for column, dtype in PROBE_COLUMNS.items():
        if column not in frame.columns:
            frame[column] = 0 if dtype == "int64" else ("" if dtype == "string" else np.nan)
    ints = [c for c, t in PROBE_COLUMNS.items() if t == "int64"]
    frame[ints] = frame[ints].fillna(0)
    return frame[list(PROBE_COLUMNS)].astype(PROBE_COLUMNS).reset_index(drop=True)
