"""Regression check of a fresh run against a committed baseline (``python -m bench check``).

The baseline is a small tidy CSV (``results/baseline/<profile>.csv``, :data:`BASELINE_COLUMNS`)
with a JSON beside it holding the run's configuration and versions. Cells are matched on
:data:`KEYS`; for each matched cell the clean and the robust accuracy are compared on their
recorded counts (k = round(rate x n)):

- a cell **fails** when the change (drop or rise) is at least ``min_effect`` (default 5
  percentage points) **and** statistically significant: two-sided Fisher exact test of the two
  proportions at ``alpha`` (default 0.05). Both conditions: the effect size keeps a tiny but
  "significant" drift on a large n from failing, the test keeps a large swing on a tiny n (or
  noise from another CPU's arithmetic) from failing. A rise counts as much as a drop: robust
  accuracy that rises without a new defence usually means a weaker attack;
- a cell whose fresh row has an ``error`` fails;
- with several training seeds (a matrix's ``seeds``) each seed's rows are compared as above (one
  seed's model, the same patches: unchanged code reproduces it), and so are the rows across the
  seeds (bench/run/seeds.py): such a row fails when its mean changes by at least ``min_effect``
  **and** the fresh mean lies outside the baseline row's interval, which spans every seed's 95%
  interval - outside what the spread between trainings and the test sample explain together;
- the comparison is refused (:class:`CannotCompare`, exit status 2) when the configuration
  differs, when a cell is missing on either side, when ``n`` differs, or when a file is not a
  baseline. The ``device`` setting is not compared but noted, like versions: another device is
  another machine's arithmetic, which the tolerance is for (a baseline written before the
  setting existed reads as ``auto``, its default). So is the torch thread count of the cells
  (``threads`` in the baseline's JSON, run.json ``host.torch_threads``): attacks can differ by a
  sample between counts, which the tolerance also covers.

The runs are deterministic for a fixed seed, so an unchanged tree reproduces the baseline
exactly; the tolerance is for other machines and library versions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.core.errors import BenchError
from bench.core.schema import ALL_SEEDS, TRAINING_SEED, fill_training_seed
from bench.outputs.formats import BASELINE_COLUMNS, BASELINE_KEYS, Results, load_results, read_baseline, write_baseline

__all__ = ["BASELINE_COLUMNS", "KEYS", "CannotCompare", "Comparison", "check", "compare", "fisher_p", "write_baseline"]

KEYS = BASELINE_KEYS
METRICS = ["clean_accuracy", "robust_accuracy"]
DEVICE, DEFAULT_DEVICE = "device", "auto"  # the configuration's device setting, noted rather than compared
MIN_EFFECT = 0.05  # 5 percentage points
ALPHA = 0.05


class CannotCompare(BenchError):
    """The run and the baseline cannot be compared cell by cell (exit status 2)."""


@dataclass
class Comparison:
    """Every compared (cell, metric), the ones that changed at all, and the verdict."""

    cells: pd.DataFrame  # one row per matched cell and metric: baseline, now, change, p_value, status
    compared: int  # matched cells
    notes: list[str]

    @property
    def failed(self) -> pd.DataFrame:
        return self.cells[self.cells["status"] != "ok"]

    @property
    def changed(self) -> pd.DataFrame:
        return self.cells[(self.cells["change"] != 0) | (self.cells["status"] != "ok")]


def _describe(key: tuple[Any, ...]) -> str:
    return " | ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in key)


def fisher_p(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided Fisher exact test of k1/n1 against k2/n2."""
    from scipy.stats import fisher_exact

    if n1 == 0 or n2 == 0:
        return 1.0
    return float(fisher_exact(np.array([[k1, n1 - k1], [k2, n2 - k2]])).pvalue)


def compare(
    baseline: pd.DataFrame,
    results: Results,
    *,
    meta: dict[str, Any] | None = None,
    min_effect: float = MIN_EFFECT,
    alpha: float = ALPHA,
) -> Comparison:
    """Compare a results folder with a baseline frame cell by cell (see the module docstring)."""
    meta = meta or {}
    notes = []
    config, run_config = meta.get("configuration"), results.run.get("configuration")
    if config and run_config:
        devices = (config.get(DEVICE, DEFAULT_DEVICE), run_config.get(DEVICE, DEFAULT_DEVICE))
        config = {k: v for k, v in config.items() if k != DEVICE}
        run_config = {k: v for k, v in run_config.items() if k != DEVICE}
        if devices[0] != devices[1]:
            notes.append(f"device setting differs from the baseline's: {devices[0]} -> {devices[1]}")
    if config and run_config and config != run_config:
        diff = sorted(k for k in set(config) | set(run_config) if config.get(k) != run_config.get(k))
        raise CannotCompare(f"{results.folder}: configuration differs from the baseline's in {', '.join(diff)}")
    threads = (meta.get("threads"), results.run.get("host", {}).get("torch_threads"))
    if None not in threads and threads[0] != threads[1]:  # in the cell keys: other cells, compared as such
        notes.append(f"torch thread count differs from the baseline's: {threads[0]} -> {threads[1]}")
    versions, run_versions = meta.get("versions", {}), results.run.get("versions", {})
    differ = sorted(k for k in set(versions) & set(run_versions) if versions[k] != run_versions[k])
    if differ:
        notes.append(
            "versions differ from the baseline's: "
            + ", ".join(f"{k} {versions[k]} -> {run_versions[k]}" for k in differ)
        )
    table = results.table  # each seed's rows and, with several seeds, the rows across them
    fresh = table[[*KEYS, "n", "error", *METRICS]].copy()
    baseline = baseline.copy()
    baseline = fill_training_seed(baseline)  # written before the column: one training, the run's seed
    for frame in (baseline, fresh):
        frame["epsilon_255"] = frame["epsilon_255"].astype(float).round(6)
        for c in KEYS[:-1]:
            frame[c] = frame[c].astype(str)
    for name, frame in (("baseline", baseline), (str(results.folder), fresh)):
        dup = frame[frame.duplicated(KEYS, keep=False)]
        if len(dup):
            raise CannotCompare(f"{name}: duplicate cell {_describe(tuple(dup.iloc[0][KEYS]))}")
    merged = baseline.merge(fresh, on=KEYS, how="outer", suffixes=("_base", ""), indicator=True)
    for side, where in (("left_only", f"missing from {results.folder}"), ("right_only", "not in the baseline")):
        lost = merged[merged["_merge"] == side]
        if len(lost):
            raise CannotCompare(f"{len(lost)} cells {where}, e.g. {_describe(tuple(lost.iloc[0][KEYS]))}")
    bad_n = merged[(merged["error"].fillna("") == "") & (merged["n"] != merged["n_base"])]
    if len(bad_n):
        r = bad_n.iloc[0]
        raise CannotCompare(
            f"n differs ({int(r['n_base'])} in the baseline, {int(r['n'])} now) for "
            f"{len(bad_n)} cells, e.g. {_describe(tuple(r[KEYS]))}"
        )
    rows = []
    for _, r in merged.iterrows():
        for metric in METRICS:
            base, now, n = float(r[f"{metric}_base"]), float(r[metric]), int(r["n_base"])
            if str(r["error"] or ""):
                rows.append(
                    {
                        **{k: r[k] for k in KEYS},
                        "metric": metric,
                        "n": n,
                        "baseline": base,
                        "now": np.nan,
                        "change": np.nan,
                        "p_value": np.nan,
                        "status": "error",
                    }
                )
                continue
            if r[TRAINING_SEED] == ALL_SEEDS:  # means over seeds: judged against the seeds' spread
                low, high = float(r[f"{metric}_low"]), float(r[f"{metric}_high"])
                change, p = now - base, float("nan")
                fails = abs(change) >= min_effect - 1e-12 and not low - 1e-12 <= now <= high + 1e-12
            else:
                k1, k2 = round(base * n), round(now * n)
                p = fisher_p(k1, n, k2, n) if k1 != k2 else 1.0
                change = (k2 - k1) / n if n else 0.0
                fails = abs(change) >= min_effect - 1e-12 and p < alpha
            status = ("rise" if change > 0 else "drop") if fails else "ok"
            rows.append(
                {
                    **{k: r[k] for k in KEYS},
                    "metric": metric,
                    "n": n,
                    "baseline": base,
                    "now": now,
                    "change": change,
                    "p_value": p,
                    "status": status,
                }
            )
    cells = pd.DataFrame(rows)
    return Comparison(cells, len(merged), notes)


def check(
    results_dir: str | Path, baseline_path: str | Path, *, min_effect: float = MIN_EFFECT, alpha: float = ALPHA
) -> Comparison:
    """Read both sides and compare them; CannotCompare (a BenchError) when they cannot be."""
    if not 0 < alpha < 1:
        raise BenchError(f"--alpha {alpha:g}: not allowed; a level between 0 and 1")
    if not 0 <= min_effect <= 1:
        raise BenchError(f"--min-effect {100 * min_effect:g}: not allowed; percentage points between 0 and 100")
    try:
        baseline, meta = read_baseline(baseline_path)
    except BenchError as err:
        raise CannotCompare(str(err)) from None
    try:
        results = load_results(results_dir)
    except BenchError as err:
        raise CannotCompare(str(err)) from None
    return compare(baseline, results, meta=meta, min_effect=min_effect, alpha=alpha)
