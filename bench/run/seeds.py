"""The rows across training seeds: what a matrix with ``seeds = [...]`` adds to its table.

Each model is trained once per seed and attacked on the same test patches (the matrix's ``seed``),
so every row of the table exists once per training seed. Two trainings of one detector differ by
more than the sampling interval of one of them can show (docs/design.md, "Training seeds"): a
defence "gaining 10 points" may be another seed. So for every (task, detector, defence, attack,
gradient, norm, variant, epsilon) with more than one seed this module adds one row with
``training_seed`` = ``all`` (schema.ALL_SEEDS):

- the rates (and the paired flags' yardstick numbers, the costs) are the mean over the seeds;
- ``robust_accuracy_seed_min`` / ``_max``: the across-seed range of the robust accuracy;
- each rate's interval spans every seed's 95% Wilson interval (the lowest lower end, the highest
  upper end): the uncertainty of one training's sample and the spread between trainings together,
  so a comparison of two such rows whose intervals do not overlap holds on every seed;
- ``seeds``: the seeds behind the row (those whose cell succeeded); where a seed's cell failed,
  the row across seeds is a failed row too (``error`` names the seeds), its numbers empty;
- its flags: every flag raised on one of its seeds' rows, and ``seed_sensitive``.

``seed_sensitive`` (a limit of precision, docs/flags.md) marks the rows across seeds, and each of
their seeds' rows, whose across-seed range of robust accuracy exceeds the seeds' sampling
interval (the mean width of their 95% intervals): the training seed moves the number more than
the test sample does, so one training's number is not the detector's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.core.schema import (
    ALL_SEEDS,
    FLAG_NAMES,
    INTERVAL_RATES,
    MATRIX_COLUMNS,
    TRAINING_SEED,
    conform,
    several_seeds,
)

# what identifies a row apart from its training seed
KEY = [
    "task",
    "detector",
    "defense",
    "attack",
    "gradient",
    "library",
    "norm",
    "threat",
    "minimum_norm",
    "quantized",
    "postprocess",
    "epsilon_255",
]
MEAN = [
    *INTERVAL_RATES,
    "reference_robust_accuracy",
    "converged_robust_accuracy",
    "perturbation_linf_max",
    "perturbation_l2_mean",
    "psnr_mean",
    "ssim_mean",
    "attacked",
    "queries",
    "seconds",
    "train_seconds",
]
FIRST = ["epsilon", "n", "query_budget", "seed", "device", "threads"]


def _sensitive(table: pd.DataFrame) -> pd.Series:
    """Per row across seeds: the across-seed range of robust accuracy exceeds the seeds' mean
    interval width (computed by :func:`seed_rows`, read back from its columns here)."""
    spread = table["robust_accuracy_seed_max"] - table["robust_accuracy_seed_min"]
    return (spread > table["_width"]).fillna(False).astype(bool)


def seed_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The rows across seeds of a flagged matrix table (empty unless it has several seeds), with
    their flags; see the module docstring."""
    if not several_seeds(table):
        return conform(pd.DataFrame(columns=list(MATRIX_COLUMNS)), MATRIX_COLUMNS)
    rows = table[table[TRAINING_SEED] != ALL_SEEDS]
    ok = rows[rows["error"] == ""]
    flags = [f"flag_{name}" for name in FLAG_NAMES]
    grouped = ok.groupby(KEY, sort=False, observed=True, dropna=False)
    out = grouped[MEAN].mean()
    out[FIRST] = grouped[FIRST].first()
    for rate in INTERVAL_RATES:
        out[f"{rate}_low"] = grouped[f"{rate}_low"].min()
        out[f"{rate}_high"] = grouped[f"{rate}_high"].max()
    out["robust_accuracy_seed_min"] = grouped["robust_accuracy"].min()
    out["robust_accuracy_seed_max"] = grouped["robust_accuracy"].max()
    out["_width"] = (
        (ok["robust_accuracy_high"] - ok["robust_accuracy_low"])
        .groupby([ok[c] for c in KEY], sort=False, observed=True, dropna=False)
        .mean()
    )
    out["seeds"] = grouped["robust_accuracy"].size()
    out[flags] = grouped[flags].any()
    out = out.reset_index().assign(error="")
    out["attacked"] = out["attacked"].round()
    out["flag_seed_sensitive"] = _sensitive(out) & (out["seeds"] > 1)
    # a seed whose cell failed: the row across seeds is a failure too (a mean over fewer seeds
    # is not comparable with the others'), naming the seeds; the seeds that ran keep their rows
    bad = rows[rows["error"] != ""]
    if len(bad):
        by_key = bad.groupby(KEY, sort=False, observed=True, dropna=False)
        failed = by_key.first().reset_index()
        names = by_key[TRAINING_SEED].agg(lambda s: ", ".join(dict.fromkeys(s.astype(str)))).to_numpy()
        failed["error"] = [f"training seed {n} failed: {e}" for n, e in zip(names, failed["error"])]
        counts = out.set_index(KEY)["seeds"]
        failed["seeds"] = [int(counts.get(tuple(k), 0)) for k in failed[KEY].itertuples(index=False)]
        hit = out[KEY].merge(failed[KEY].assign(_bad=True), on=KEY, how="left")["_bad"].notna().to_numpy()
        out = pd.concat([out[~hit].drop(columns="_width"), failed])
    else:
        out = out.drop(columns="_width")
    out = out.assign(**{TRAINING_SEED: ALL_SEEDS, "cell": "", "model": ""})
    out["error"] = out["error"].fillna("")
    for name in flags:
        out[name] = out[name].fillna(False).astype(bool)
    return conform(out, MATRIX_COLUMNS)


def with_seed_rows(table: pd.DataFrame) -> pd.DataFrame:
    """A flagged matrix table with its rows across seeds added and ``seed_sensitive`` raised on
    those and on their seeds' rows; the ``flags`` column rewritten. Unchanged with one seed."""
    across = seed_rows(table)
    if across.empty:
        return table
    marked = across.loc[across["flag_seed_sensitive"], KEY].drop_duplicates()
    hit = table[KEY].merge(marked.assign(_hit=True), on=KEY, how="left")["_hit"].fillna(False).to_numpy(dtype=bool)
    table = table.copy()
    table["flag_seed_sensitive"] = table["flag_seed_sensitive"].to_numpy(dtype=bool) | hit
    out = pd.concat([table, across], ignore_index=True)
    names = np.array(FLAG_NAMES, dtype=object)
    marks = out[[f"flag_{name}" for name in FLAG_NAMES]].to_numpy(dtype=bool)
    out["flags"] = pd.Series([",".join(names[row]) for row in marks], index=out.index, dtype="string")
    return conform(out, MATRIX_COLUMNS)
