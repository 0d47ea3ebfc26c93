"""The run's tables, assembled from its cells' rows: ensemble rows, intervals, trust flags and the
rows across training seeds.

Everything derived from the cells' stored counts is computed here, on every run, from the rows
as they are now - never read back stale from the cache: the 95% Wilson interval of every rate
(bench/core/stats.py; a cell stores the rates, which stand for counts out of ``n``), the
``ensemble`` rows (bench/run/ensemble.py), the trust flags (bench/run/flags.py), the intervals of
the probes' shares and the validation-accuracy intervals of the models table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bench.core.schema import (
    MATRIX_COLUMNS,
    MODEL_COLUMNS,
    SAMPLE_COLUMNS,
    TRAINING_SEED,
    conform,
    conform_probes,
    fill_training_seed,
)
from bench.core.stats import success_rate_intervals, wilson, wilson_arrays
from bench.run.cells import positive_class
from bench.run.ensemble import ensemble_rows
from bench.run.flags import add_flags
from bench.run.seeds import with_seed_rows
from bench.run.training import TRAINING_THREADS

if TYPE_CHECKING:
    from bench.run.plan import ModelJob
    from bench.run.training import ModelMeta


@dataclass(frozen=True)
class Tables:
    """The tidy tables of a run (schemas in bench/core/schema.py)."""

    table: pd.DataFrame  # matrix: one row per cell x epsilon x variant, plus the ensemble rows
    samples: pd.DataFrame  # per sample
    models: pd.DataFrame  # per trained (task, detector, defence)
    probes: pd.DataFrame | None  # per model and gradient (None before the probe stage ran)


def model_row(
    job: ModelJob, meta: ModelMeta | None, from_cache: bool, error: str, *, device: str = "cpu"
) -> dict[str, Any]:
    """One row of the models table (NaN numbers when the model failed; ``device``: the kind)."""
    row: dict[str, Any] = {
        "task": str(job.task),
        "detector": str(job.detector),
        "defense": str(job.defense),
        TRAINING_SEED: str(job.training_seed),
        "model": job.key,
        "device": device,
        "threads": TRAINING_THREADS,
        "from_cache": from_cache,
        "trained": not job.pretrained,  # false: a network trained elsewhere, evaluated as it is
        "error": error,
    }
    if meta is None:
        nan = float("nan")
        none = {"test_accuracy": nan, "test_accuracy_low": nan, "test_accuracy_high": nan, "test_n": 0}
        return {**row, **none, "val_accuracy": nan, "parameters": 0, "epochs": 0, "train_seconds": nan}
    low, high = wilson(round(meta.test_accuracy * meta.test_n), meta.test_n)
    return {
        **row,
        "test_accuracy": meta.test_accuracy,
        "test_accuracy_low": low,
        "test_accuracy_high": high,
        "test_n": meta.test_n,
        "val_accuracy": meta.val_accuracy,
        "parameters": meta.parameters,
        "epochs": len(meta.history),
        "train_seconds": meta.seconds,
    }


def rate_intervals(table: pd.DataFrame, samples: pd.DataFrame, positive: dict[str, int | None]) -> pd.DataFrame:
    """``table`` with the 95% Wilson interval of the clean and robust accuracy, tpr and tnr of every
    cell row, from the counts behind the rates (k = rate x n; for tpr and tnr the class sizes come
    from the per-sample rows). The ensemble rows keep theirs (computed from the samples when they
    are made); the attack success rate's follows from the same counts."""
    out = table.copy()
    cells = (out["attack"] != "ensemble").to_numpy()
    n = out["n"].to_numpy(dtype=np.float64)
    sizes = {"tpr": np.zeros(len(out)), "tnr": np.zeros(len(out))}
    if len(samples):
        unique = samples.drop_duplicates(["cell", "sample"])
        # tasks without a known manipulated class (multi-class, or a binary task whose dataset
        # description is missing) count no class sizes: their tpr / tnr intervals stay NaN
        known = unique["task"].astype(str).map(lambda t: positive.get(t) is not None).to_numpy(dtype=bool)
        unique = unique[known]
        manipulated = unique["label"].to_numpy() == unique["task"].astype(str).map(positive).to_numpy()
        per_cell = pd.DataFrame({"cell": unique["cell"], "tpr": manipulated, "tnr": ~manipulated})
        counts = per_cell.groupby("cell")[["tpr", "tnr"]].sum()
        for rate in sizes:
            sizes[rate] = out["cell"].map(counts[rate]).fillna(0).to_numpy(dtype=np.float64)
    for rate, total in (("clean_accuracy", n), ("robust_accuracy", n), *sizes.items()):
        low, high = wilson_arrays(np.rint(out[rate].to_numpy(dtype=np.float64) * total), total)
        out.loc[cells, f"{rate}_low"] = low[cells]
        out.loc[cells, f"{rate}_high"] = high[cells]
    return success_rate_intervals(out)


def probe_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The probes table with the 95% Wilson interval of each share (the gradient shares and loss
    not increasing over the clean-correct samples, the unbounded robust accuracy over all of them)."""
    table = conform_probes(pd.DataFrame(rows))
    for share, total in (
        ("zero_gradient_share", table["clean_correct"]),
        ("unbounded_robust_accuracy", table["n"]),
        ("loss_not_increasing_share", table["clean_correct"]),
        ("zero_loss_gradient_share", table["clean_correct"]),
        ("noisy_gradient_share", table["clean_correct"]),
    ):
        count = total.to_numpy(dtype=np.float64)
        low, high = wilson_arrays(np.rint(table[share].to_numpy(dtype=np.float64) * count), count)
        table[f"{share}_low"], table[f"{share}_high"] = low, high
    return table


def compact_samples(frame: pd.DataFrame) -> pd.DataFrame:
    """A cell's per-sample rows as a run holds them until its tables are assembled: every text
    column categorical. pandas keeps each row's text (pyarrow strings), and most of it repeats
    within a cell (the canonical names of the detector, defence and attack, the cell key): the
    default matrix's 1M per-sample rows took about 370 MB as text. :func:`as_text` turns the
    columns back into the text they were."""
    text = [c for c in frame.columns if pd.api.types.is_string_dtype(frame[c].dtype)]
    return frame.astype(dict.fromkeys(text, "category")) if text else frame


def concat_samples(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Per-sample frames one after the other, a column categorical in every frame kept
    categorical (pandas' concat turns categoricals with different categories into text;
    ``union_categoricals`` merges them instead); a column categorical in only some frames (cells
    served from the cache are held as read, as text) comes out as text."""
    if len(frames) == 1:
        return frames[0]
    columns = list(frames[0].columns)
    compact = [c for c in columns if all(isinstance(f[c].dtype, pd.CategoricalDtype) for f in frames)]
    parts = [as_text(f.drop(columns=compact)) for f in frames]
    out = pd.concat(parts)
    for column in compact:
        out[column] = pd.api.types.union_categoricals([f[column] for f in frames])
    return out[columns]


def as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its categorical columns turned back into the text they hold."""
    categorical = {c: d.categories.dtype for c, d in frame.dtypes.items() if isinstance(d, pd.CategoricalDtype)}
    return frame.astype(categorical) if categorical else frame


def assemble(
    rows: list[pd.DataFrame],
    samples: list[pd.DataFrame],
    models: list[dict[str, Any]],
    probes: pd.DataFrame | None,
    datasets: dict[str, dict[str, Any] | None],
    *,
    device: str = "cpu",
    threads: int,
    seeds: Mapping[str, int] | None = None,
) -> Tables:
    """The tables of the cells finished so far (``datasets``: each task's dataset description;
    ``device``: the device kind of the run, ``threads``: its cells' torch threads, columns of every
    table; ``seeds``: each model key's training seed, where the matrix lists several - the rows of
    a model not in it were trained with the run's ``seed``). With several seeds the matrix table
    has rows across the seeds too (bench/run/seeds.py)."""
    table = pd.concat(rows) if rows else pd.DataFrame(columns=list(MATRIX_COLUMNS))
    # the run holds them compact (:func:`compact_samples`); the tables have their text
    per_sample = as_text(concat_samples(samples)) if samples else pd.DataFrame(columns=list(SAMPLE_COLUMNS))
    table, per_sample = table.assign(device=device, threads=threads), per_sample.assign(device=device, threads=threads)
    named = {key: str(seed) for key, seed in (seeds or {}).items()}
    table = table.assign(training_seed=table["model"].map(named).fillna("") if len(table) else "", seeds=1)
    table = conform(table, MATRIX_COLUMNS)
    by_cell = dict(zip(table["cell"], table[TRAINING_SEED]))
    per_sample = conform(per_sample.assign(training_seed=per_sample["cell"].map(by_cell)), SAMPLE_COLUMNS)
    positive = {task: positive_class(info["classes"]) if info else None for task, info in datasets.items()}
    table = rate_intervals(table, per_sample, positive)
    ensemble = ensemble_rows(table, per_sample, positive)
    if not ensemble.empty:
        table = conform(pd.concat([table, ensemble.assign(device=device, threads=threads)]), MATRIX_COLUMNS)
    if probes is not None:  # a model not in ``seeds``: trained with the run's seed
        probes = probes.assign(training_seed=probes["model"].map(named).fillna(""))
        probes = fill_training_seed(probes, table["seed"].iloc[0] if len(table) else None)
    table = with_seed_rows(conform(add_flags(success_rate_intervals(table), probes, per_sample), MATRIX_COLUMNS))
    frame = pd.DataFrame(models, columns=list(MODEL_COLUMNS))
    splits = {t: (info or {}).get("splits", {}) for t, info in datasets.items()}
    val_n = frame["task"].map(lambda t: (splits.get(t, {}).get("val") or {}).get("patches", 0)).astype(float)
    low, high = wilson_arrays(np.rint(frame["val_accuracy"].to_numpy(dtype=float) * val_n), val_n.to_numpy())
    frame = frame.assign(val_accuracy_low=low, val_accuracy_high=high)
    return Tables(table, per_sample, conform(frame, MODEL_COLUMNS), probes)
