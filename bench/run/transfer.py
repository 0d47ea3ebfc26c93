"""Transferability of the kept adversarial images, and the gallery's examples: rows from scores.

Every cell that keeps its images (bench/run/plan.py, ``images_attack``: the matrix's first
white-box fixed-epsilon Linf attack, PGD preferred, on each training-time defence) is a
*source*; every trained model of the same task (each detector x training-time defence, the
source's own model included) is a *target*. The executor scores the source's 8-bit images on
every target (bench/run/scoring.py, cached per pair) and turns the scores into one row per
(source, target, epsilon) here, plus a few clean / adversarial pairs per source for the gallery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from bench.core.stats import rate

if TYPE_CHECKING:
    from bench.run.plan import Cell, ModelJob
    from bench.run.scoring import Scores

EXAMPLES_PER_SOURCE = 4


def transfer_rows(
    source: Cell, target: ModelJob, images: dict[str, np.ndarray], own: Scores, scores: Scores
) -> list[dict[str, Any]]:
    """Rows of one (source, target) pair, one per epsilon. ``own``: the source model's scores."""
    label = images["label"]
    clean_ok = scores.clean_pred == label
    own_clean_ok = own.clean_pred == label
    clean_acc, clean_low, clean_high = rate(clean_ok)
    rows = []
    for k, e in enumerate(images["epsilon_255"]):
        adv_ok = scores.adv_pred[k] == label
        fooled = own_clean_ok & (own.adv_pred[k] != label)
        eligible = fooled & clean_ok
        acc, low, high = rate(adv_ok)
        success, s_low, s_high = rate(~adv_ok[eligible])
        rows.append(
            {
                "task": str(source.model.task),
                "source_detector": str(source.model.detector),
                "source_defense": str(source.model.defense),
                "target_detector": str(target.detector),
                "target_defense": str(target.defense),
                "attack": str(source.attack),
                "white_box": target.key == source.model_key,
                "epsilon_255": float(e),
                "n": len(label),
                "target_clean_accuracy": clean_acc,
                "target_clean_accuracy_low": clean_low,
                "target_clean_accuracy_high": clean_high,
                "target_accuracy": acc,
                "target_accuracy_low": low,
                "target_accuracy_high": high,
                "target_robust_accuracy": float((clean_ok & adv_ok).mean()) if len(label) else float("nan"),
                "source_fooled": int(fooled.sum()),
                "transfer_n": int(eligible.sum()),
                "transfer_success_rate": success,
                "transfer_success_rate_low": s_low,
                "transfer_success_rate_high": s_high,
                "source_cell": source.key,
                "target_model": target.key,
            }
        )
    return rows


def pick_examples(label: np.ndarray, x: np.ndarray, own: Scores, k: int = EXAMPLES_PER_SOURCE) -> np.ndarray:
    """Positions of up to k gallery examples, taken round-robin over the classes (so the first
    ones show every class): patches the source classifies correctly clean, those fooled at the
    smallest epsilon first; ties go to the most textured patch (largest pixel standard deviation:
    a flat patch shows nothing) and then to test order."""
    clean_ok = own.clean_pred == label
    wrong = own.adv_pred != label  # (E, N)
    fooled_at = np.where(wrong.any(axis=0), wrong.argmax(axis=0), len(wrong))
    texture = x.reshape(len(x), -1).astype(np.float64).std(axis=1)
    queues = {
        c: sorted(np.flatnonzero(clean_ok & (label == c)), key=lambda i: (fooled_at[i], -texture[i], i))
        for c in np.unique(label)
    }
    picked: list[int] = []
    while len(picked) < k and any(queues.values()):
        for c in list(queues):
            if queues[c] and len(picked) < k:
                picked.append(int(queues[c].pop(0)))
    return np.asarray(picked, dtype=np.int64)


def example_entry(source: Cell, classes: list[str], images: dict[str, np.ndarray], own: Scores) -> dict[str, Any]:
    """The gallery entry of one source: its description and the arrays of its picked examples."""
    picked = pick_examples(images["label"], images["x"], own)
    arrays = {
        "x": images["x"][picked],
        "adv": images["adv"][:, picked],
        "label": images["label"][picked],
        "sample": images["sample"][picked],
        "epsilon_255": images["epsilon_255"],
        "clean_prob": own.clean_prob[picked],
        "adv_prob": own.adv_prob[:, picked],
        "clean_pred": own.clean_pred[picked],
        "adv_pred": own.adv_pred[:, picked],
    }
    model = source.model
    return {
        "task": str(model.task),
        "detector": str(model.detector),
        "defense": str(model.defense),
        "attack": str(source.attack),
        "classes": classes,
        "arrays": arrays,
    }
