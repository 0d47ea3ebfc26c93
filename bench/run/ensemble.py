"""The worst case per sample over every attack run on a model: the ``ensemble`` rows.

A detector is only as robust as its weakest point: a patch counts as robust at an epsilon when
no attack run on that (task, detector, defence) - in any library, with any gradient - fooled it
within that budget or a smaller one of the matrix (an adversarial image inside a smaller ball lies
inside the larger one; this matters where an attack runs at some epsilons only, as the
convergence run does), and the detector was right on it clean. One ensemble row per (task,
detector, defence, training seed, norm, epsilon, quantized, postprocess), computed from the stored per-sample
outcomes only; its robust accuracy can never exceed any single attack's on the same samples, and
never rises with epsilon.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.core.fingerprint import digest
from bench.core.schema import MATRIX_COLUMNS, conform
from bench.core.stats import rate

GROUP = ["task", "detector", "defense", "training_seed", "norm", "quantized", "postprocess", "epsilon_255"]


def ensemble_rows(table: pd.DataFrame, samples: pd.DataFrame, positive: dict[str, int | None]) -> pd.DataFrame:
    """Ensemble rows of a matrix table from its per-sample table.

    ``positive``: per task, the manipulated class of a binary pristine-vs-manipulated task (for
    ``tpr`` / ``tnr``), or None.
    """
    rows = table[(table["error"] == "") & (table["attack"] != "ensemble")]
    if rows.empty or samples.empty:
        return conform(pd.DataFrame(columns=list(MATRIX_COLUMNS)), MATRIX_COLUMNS)
    samples = samples[samples["cell"].isin(set(rows["cell"]))]
    worst = samples.groupby([*GROUP, "sample"], sort=True, observed=True).agg(
        clean_correct=("clean_correct", "all"), adv_correct=("adv_correct", "all"), label=("label", "first")
    )
    # fooled at a smaller epsilon: fooled at every larger one
    curve = [c for c in GROUP if c != "epsilon_255"]
    worst = worst.reset_index().sort_values([*curve, "sample", "epsilon_255"])
    by_sample = worst["adv_correct"].astype(np.int8).groupby([worst[c] for c in [*curve, "sample"]], observed=True)
    worst["adv_correct"] = by_sample.cummin().astype(bool)
    worst = worst.set_index([*GROUP, "sample"]).sort_index()
    members = rows.groupby(GROUP, sort=True, observed=True)
    out = []
    for key, outcome in worst.groupby(level=list(range(len(GROUP))), sort=True):
        group = members.get_group(key)
        fields = dict(zip(GROUP, key))
        clean = outcome["clean_correct"].to_numpy()
        robust = outcome["adv_correct"].to_numpy()
        labels = outcome["label"].to_numpy()
        flipped = clean & ~robust
        pos = positive.get(str(fields["task"]))
        nan3 = (np.nan, np.nan, np.nan)
        tpr = rate(robust[labels == pos]) if pos is not None else nan3
        tnr = rate(robust[labels != pos]) if pos is not None else nan3
        clean_acc, clean_low, clean_high = rate(clean)
        robust_acc, low, high = rate(robust)
        out.append(
            {
                **fields,
                "attack": "ensemble",
                "gradient": "any",
                "library": "ensemble",
                "threat": "ensemble",
                "minimum_norm": False,
                "epsilon": float(group["epsilon"].iloc[0]),
                "n": len(robust),
                "clean_accuracy": clean_acc,
                "clean_accuracy_low": clean_low,
                "clean_accuracy_high": clean_high,
                "robust_accuracy": robust_acc,
                "robust_accuracy_low": low,
                "robust_accuracy_high": high,
                "tpr": tpr[0],
                "tpr_low": tpr[1],
                "tpr_high": tpr[2],
                "tnr": tnr[0],
                "tnr_low": tnr[1],
                "tnr_high": tnr[2],
                "attack_success_rate": flipped.sum() / clean.sum() if clean.any() else np.nan,
                "perturbation_linf_max": float(group["perturbation_linf_max"].max()),
                "perturbation_l2_mean": np.nan,  # the worst case has no one image per sample
                "psnr_mean": np.nan,
                "ssim_mean": np.nan,
                "attacked": int(group["attacked"].max()),
                "queries": np.nan,
                "query_budget": np.nan,
                "seconds": float(group["seconds"].sum()),
                "train_seconds": float(group["train_seconds"].iloc[0]),
                "seed": int(group["seed"].iloc[0]),
                "cell": digest("ensemble", sorted(group["cell"])),
                "model": str(group["model"].iloc[0]),
                "device": str(group["device"].iloc[0]),
                "threads": group["threads"].iloc[0],
                "error": "",
            }
        )
    return conform(pd.DataFrame(out), MATRIX_COLUMNS)
