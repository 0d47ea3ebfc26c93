"""The intervals the tables derive from the cells' rates are the Wilson intervals of the counts.

Cells store rates only (bench/run/cells.py); the 95% intervals are computed when the tables are
assembled (bench/run/tables.py), from k = rate x n. These tests count k directly on per-sample rows
and check that the derived intervals are exactly scipy's Wilson intervals of those counts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.core.columns import SAMPLE_COLUMNS
from bench.core.schema import MATRIX_COLUMNS
from bench.core.stats import wilson
from bench.run.tables import assemble, probe_table

CLASSES = ["pristine", "median3"]  # binary task: the second class is the manipulated one


def _cell(rng: np.random.Generator, cell: str, n: int) -> tuple[dict, pd.DataFrame]:
    label = rng.permutation(np.arange(n) % 2)  # both classes present
    clean_correct = rng.random(n) < 0.9
    adv_correct = clean_correct & (rng.random(n) < 0.4)
    samples = pd.DataFrame(
        {
            "task": "median3",
            "detector": "bayar",
            "defense": "none",
            "attack": "art.pgd",
            "gradient": "exact",
            "norm": "linf",
            "quantized": "float",
            "postprocess": "none",
            "epsilon": 4 / 255,
            "epsilon_255": 4.0,
            "sample": np.arange(n),
            "source": "photo",
            "label": label,
            "clean_pred": np.where(clean_correct, label, 1 - label),
            "adv_pred": np.where(adv_correct, label, 1 - label),
            "clean_correct": clean_correct,
            "adv_correct": adv_correct,
            "linf": 4 / 255,
            "l2": 0.1,
            "psnr": 50.0,
            "ssim": 0.99,
            "min_norm": np.nan,
            "cell": cell,
        }
    )
    manipulated = label == 1
    row = {
        **{k: samples[k].iloc[0] for k in ("task", "detector", "defense", "attack", "gradient", "norm")},
        **{k: samples[k].iloc[0] for k in ("quantized", "postprocess", "epsilon", "epsilon_255", "cell")},
        "library": "art",
        "threat": "white-box",
        "minimum_norm": False,
        "n": n,
        "clean_accuracy": clean_correct.mean(),
        "robust_accuracy": adv_correct.mean(),
        "tpr": adv_correct[manipulated].mean(),
        "tnr": adv_correct[~manipulated].mean(),
        "attack_success_rate": (clean_correct & ~adv_correct).sum() / clean_correct.sum(),
        "perturbation_linf_max": 4 / 255,
        "perturbation_l2_mean": 0.1,
        "psnr_mean": 50.0,
        "ssim_mean": 0.99,
        "attacked": int(clean_correct.sum()),
        "queries": np.nan,
        "query_budget": np.nan,
        "seconds": 1.0,
        "train_seconds": 1.0,
        "seed": 0,
        "model": "m",
        "error": "",
    }
    return row, samples[list(SAMPLE_COLUMNS)]


@pytest.mark.parametrize("n", [7, 40, 333])
def test_the_tables_intervals_are_the_wilson_intervals_of_the_counts(n: int) -> None:
    rng = np.random.default_rng(n)
    made = [_cell(rng, f"cell{i}", n) for i in range(3)]
    rows = [pd.DataFrame([row]) for row, _ in made]
    tables = assemble(rows, [s for _, s in made], [], None, {"median3": {"classes": CLASSES}}, threads=1)
    table = tables.table[tables.table["attack"] != "ensemble"].set_index("cell")
    assert set(MATRIX_COLUMNS) <= set(tables.table.columns)
    for _, samples in made:
        got = table.loc[samples["cell"].iloc[0]]
        manipulated = samples["label"] == 1
        counts = {
            "clean_accuracy": (samples["clean_correct"].sum(), n),
            "robust_accuracy": (samples["adv_correct"].sum(), n),
            "tpr": (samples["adv_correct"][manipulated].sum(), manipulated.sum()),
            "tnr": (samples["adv_correct"][~manipulated].sum(), (~manipulated).sum()),
            "attack_success_rate": (
                (samples["clean_correct"] & ~samples["adv_correct"]).sum(),
                samples["clean_correct"].sum(),
            ),
        }
        for rate, (k, total) in counts.items():
            low, high = wilson(int(k), int(total))
            assert got[f"{rate}_low"] == pytest.approx(low, abs=1e-12), rate
            assert got[f"{rate}_high"] == pytest.approx(high, abs=1e-12), rate


def test_the_probe_intervals_are_the_wilson_intervals_of_the_counts() -> None:
    rows = [
        {
            "task": "median3",
            "detector": "bayar",
            "defense": "none",
            "n": 50,
            "clean_correct": 45,
            "zero_gradient_share": 9 / 45,
            "unbounded_robust_accuracy": 1 / 50,
            "loss_not_increasing_share": 0 / 45,
            "error": "",
        }
    ]
    table = probe_table(rows)
    for share, (k, total) in {
        "zero_gradient_share": (9, 45),
        "unbounded_robust_accuracy": (1, 50),
        "loss_not_increasing_share": (0, 45),
    }.items():
        low, high = wilson(k, total)
        assert table[f"{share}_low"].iloc[0] == pytest.approx(low, abs=1e-12), share
        assert table[f"{share}_high"].iloc[0] == pytest.approx(high, abs=1e-12), share


def test_without_a_known_manipulated_class_tpr_and_tnr_get_no_interval() -> None:
    """A binary task whose dataset description is missing (positive class unknown) must not count
    every sample as pristine: its tpr / tnr intervals stay NaN, the others are computed."""
    made = [_cell(np.random.default_rng(1), "cell0", 50)]
    tables = assemble([pd.DataFrame([made[0][0]])], [made[0][1]], [], None, {"median3": None}, threads=1)
    row = tables.table[tables.table["attack"] != "ensemble"].iloc[0]
    assert np.isnan([row["tpr_low"], row["tpr_high"], row["tnr_low"], row["tnr_high"]]).all()
    low, high = wilson(int(made[0][1]["adv_correct"].sum()), 50)
    assert (row["robust_accuracy_low"], row["robust_accuracy_high"]) == pytest.approx((low, high), abs=1e-12)


def test_wilson_is_scipys_interval_bit_for_bit() -> None:
    """bench.core.stats.wilson computes SciPy's Wilson interval itself (speed): the same floats."""
    from scipy.stats import binomtest

    from bench.core.stats import wilson

    for n in (*range(1, 21), 120, 566):
        for k in range(n + 1):
            ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
            assert wilson(k, n) == (float(ci.low), float(ci.high)), (k, n)
    assert wilson(3, 50, 0.9) == tuple(float(v) for v in binomtest(3, 50).proportion_ci(0.9, method="wilson"))
    assert all(np.isnan(wilson(0, 0)))


def test_mcnemar_p_uses_scipys_binomial_cdf_bit_for_bit() -> None:
    from scipy.stats import binom

    from bench.core.stats import mcnemar_p

    b, c = np.meshgrid(np.arange(0, 40.0), np.arange(0, 40.0))
    n = b + c
    expected = np.where(n > 0, np.minimum(2.0 * binom.cdf(np.minimum(b, c), n, 0.5), 1.0), 1.0)
    assert np.array_equal(mcnemar_p(b.ravel(), c.ravel()), expected.ravel())


def test_samples_held_compact_come_back_as_the_same_text() -> None:
    """A run holds per-sample frames with categorical text columns and concatenates them with
    their categories merged; assembled, they are the frames pandas would have concatenated."""
    from bench.run.tables import as_text, compact_samples, concat_samples

    frames = [
        pd.DataFrame(
            {
                "attack": pd.array([f"art.pgd[steps={k}]"] * 3, dtype="str"),
                "source": pd.array(["a.png", f"b{k}.png", "a.png"], dtype="str"),
                "sample": np.arange(3) + 10 * k,
                "adv_correct": np.array([True, False, k % 2 == 0]),
                "l2": np.array([0.5, np.nan, 1.5]) * k,
            }
        )
        for k in range(4)
    ]
    compact = [compact_samples(f) for f in frames]
    assert all(isinstance(f["attack"].dtype, pd.CategoricalDtype) for f in compact)
    assert compact[0]["sample"].dtype == frames[0]["sample"].dtype  # numbers untouched
    together = concat_samples(compact)
    assert isinstance(together["source"].dtype, pd.CategoricalDtype)  # kept compact when joined
    pd.testing.assert_frame_equal(as_text(together), pd.concat(frames), check_exact=True)
    pd.testing.assert_frame_equal(as_text(concat_samples(compact[:1])), frames[0], check_exact=True)
    mixed = concat_samples([compact[0], frames[1], compact[2]])  # a cell served from the cache: text
    assert not isinstance(mixed["attack"].dtype, pd.CategoricalDtype)
    pd.testing.assert_frame_equal(as_text(mixed), pd.concat([frames[0], frames[1], frames[2]]), check_exact=True)
