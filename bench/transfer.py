"""Post-cell stage of a run: transferability of the kept adversarial images, and gallery examples.

Every cell that keeps its images (:func:`bench.runner.keeps_images`: the matrix's first white-box
fixed-epsilon Linf attack, PGD preferred, on each training-time defence) is a *source*; every
trained model of the same task (each detector x training-time defence, the source's own model
included) is a *target*. The source's 8-bit adversarial images are scored on every target and
the per-sample predictions are cached per (source cell key, target model key) under
``<cache>/transfer/``, so a rerun costs only file reads. The stage writes

- ``transfer.csv`` / ``transfer.parquet``: one row per (source, target, epsilon) (:data:`TRANSFER_COLUMNS`);
- ``examples.npz``: a few clean / adversarial pairs per source with the source's scores, for the
  gallery figure (:func:`read_examples`).

Figures and reports read these files only; nothing here re-runs an attack.
"""

from __future__ import annotations

import inspect
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import pandas as pd

from bench.cache import atomic_write, atomic_write_text, digest
from bench.schema import conform
from bench.stats import rate

if TYPE_CHECKING:
    from torch import nn

    from bench.runner import Cell, ModelJob, Runner

EXAMPLES_PER_SOURCE = 4

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


@dataclass(frozen=True)
class Scores:
    """A target model's predictions on a source cell's images (what is cached per pair)."""

    clean_pred: np.ndarray  # (N,)
    adv_pred: np.ndarray  # (E, N)
    clean_prob: np.ndarray  # (N,) probability of the true class
    adv_prob: np.ndarray  # (E, N)


def score_images(model: nn.Module, x: np.ndarray, adv: np.ndarray, label: np.ndarray) -> Scores:
    """Predictions and true-class probabilities of a model on uint8 clean (N) and adversarial
    (E x N) images. An adversarial image equal to its clean image, or to the previous epsilon's
    (a sweep keeps the example of a smaller ball), is not scored again."""
    import torch

    def forward(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        preds, probs = [], []
        with torch.no_grad():
            for i in range(0, len(images), 512):
                batch = torch.from_numpy(images[i : i + 512].astype(np.float32) / np.float32(255.0))
                p = torch.softmax(model(batch), dim=1).numpy().astype(np.float64)
                preds.append(p.argmax(axis=1))
                probs.append(p)
        if not preds:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 1))
        return np.concatenate(preds), np.concatenate(probs)

    model.eval()
    n = len(x)
    clean_pred, clean_p = forward(x)
    adv_pred = np.empty((len(adv), n), dtype=np.int64)
    adv_prob = np.empty((len(adv), n), dtype=np.float64)
    flat = lambda a: a.reshape(a.shape[0], -1)  # noqa: E731
    for k in range(len(adv)):
        same_clean = (flat(adv[k]) == flat(x)).all(axis=1)
        same_prev = (flat(adv[k]) == flat(adv[k - 1])).all(axis=1) & ~same_clean if k else np.zeros(n, dtype=bool)
        new = ~same_clean & ~same_prev
        adv_pred[k], adv_prob[k] = clean_pred, clean_p[np.arange(n), label]
        if k:
            adv_pred[k, same_prev], adv_prob[k, same_prev] = adv_pred[k - 1, same_prev], adv_prob[k - 1, same_prev]
        if new.any():
            pred, p = forward(np.ascontiguousarray(adv[k][new]))
            adv_pred[k, new], adv_prob[k, new] = pred, p[np.arange(len(pred)), label[new]]
    return Scores(clean_pred, adv_pred, clean_p[np.arange(n), label], adv_prob)


def pair_key(source_cell: str, target_model: str) -> str:
    """Cache key of one (source cell, target model) pair: both keys and the scoring code."""
    from bench.versions import package_version

    return digest("transfer", source_cell, target_model, inspect.getsource(score_images), package_version("torch"))


def _load_model(cache_dir: Path, job: ModelJob, in_channels: int, num_classes: int) -> nn.Module | None:
    """A target model from the cache (None when it is not there: its training failed)."""
    import torch

    from bench.training import read_meta
    from detectors import create_detector

    weights = cache_dir / "models" / f"{job.key}.pt"
    if read_meta(cache_dir, job.key) is None or not weights.is_file():
        return None
    model = create_detector(job.detector, in_channels=in_channels, num_classes=num_classes)
    model.load_state_dict(torch.load(weights, weights_only=True))
    return model.eval()


def _pair_scores(cache_dir: Path, key: str, compute: Callable[[], Scores]) -> tuple[Scores, bool]:
    path = cache_dir / "transfer" / f"{key}.npz"
    if path.is_file():
        with np.load(path) as z:
            return Scores(**{k: z[k] for k in ("clean_pred", "adv_pred", "clean_prob", "adv_prob")}), True
    scores = compute()
    atomic_write(path, lambda f: np.savez_compressed(f, **scores.__dict__))
    return scores, False


def transfer_rows(source: Cell, target: ModelJob, images: dict, own: Scores, scores: Scores) -> list[dict]:
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
        rows.append({
            "task": str(source.model.task), "source_detector": str(source.model.detector),
            "source_defense": str(source.model.defense), "target_detector": str(target.detector),
            "target_defense": str(target.defense), "attack": str(source.attack), "white_box": target.key == source.model_key,
            "epsilon_255": float(e), "n": len(label),
            "target_clean_accuracy": clean_acc, "target_clean_accuracy_low": clean_low, "target_clean_accuracy_high": clean_high,
            "target_accuracy": acc, "target_accuracy_low": low, "target_accuracy_high": high,
            "target_robust_accuracy": float((clean_ok & adv_ok).mean()) if len(label) else float("nan"),
            "source_fooled": int(fooled.sum()), "transfer_n": int(eligible.sum()),
            "transfer_success_rate": success, "transfer_success_rate_low": s_low, "transfer_success_rate_high": s_high,
            "source_cell": source.key, "target_model": target.key,
        })  # fmt: skip
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
    queues = {c: sorted(np.flatnonzero(clean_ok & (label == c)), key=lambda i: (fooled_at[i], -texture[i], i))
              for c in np.unique(label)}  # fmt: skip
    picked: list[int] = []
    while len(picked) < k and any(queues.values()):
        for c in list(queues):
            if queues[c] and len(picked) < k:
                picked.append(int(queues[c].pop(0)))
    return np.asarray(picked, dtype=np.int64)


def write_examples(path: Path, entries: list[dict]) -> None:
    """examples.npz: an ``index`` (JSON list, one dict per source: task, detector, defense, attack,
    classes) and per source i the arrays ``{i}/x`` (uint8 K x C x H x W), ``{i}/adv`` (uint8
    E x K x C x H x W), ``{i}/label``, ``{i}/sample`` (test-split index), ``{i}/epsilon_255``,
    ``{i}/clean_prob``, ``{i}/adv_prob`` (the source detector's probability of the true class),
    ``{i}/clean_pred`` and ``{i}/adv_pred``."""
    arrays: dict[str, np.ndarray] = {}
    index = []
    for i, entry in enumerate(entries):
        index.append({k: entry[k] for k in ("task", "detector", "defense", "attack", "classes")})
        for name, value in entry["arrays"].items():
            arrays[f"{i}/{name}"] = value
    arrays["index"] = np.array(json.dumps(index))
    atomic_write(path, lambda f: np.savez_compressed(f, **arrays))


def read_examples(path: Path) -> list[dict]:
    """The entries of an examples.npz: each index dict with its arrays under ``arrays``."""
    with np.load(path, allow_pickle=False) as z:
        index = json.loads(str(z["index"]))
        out = []
        for i, entry in enumerate(index):
            prefix = f"{i}/"
            out.append({**entry, "arrays": {k[len(prefix):]: z[k] for k in z.files if k.startswith(prefix)}})
        return out


def run_transfer(runner: Runner, cells: list[Cell]) -> pd.DataFrame | None:
    """The post-cell stage: score every kept-images cell on every model of its task, write
    transfer.csv/.parquet and examples.npz into the run's folder (removing stale ones when the run
    kept no images). Returns the transfer table (None when nothing was kept or the stage failed).
    A target whose model is missing (its training failed) is reported through the progress
    callback and left out; an error in the stage is reported and never fails the run's cells."""
    try:
        return _run_transfer(runner, cells)
    except Exception as err:  # the cells' tables are already written; the stage is extra
        runner.stats["transfer_failed"] = 1
        runner.progress(f"transfer: FAILED {type(err).__name__}: {err}")
        return None


def _run_transfer(runner: Runner, cells: list[Cell]) -> pd.DataFrame | None:
    from bench.data import read_dataset_info
    from bench.runner import keeps_images, plan_models

    start = time.perf_counter()
    out_dir, cache_dir = runner.out_dir, runner.cache_dir
    sources = [c for c in cells if keeps_images(c, runner.matrix) and runner.images_path(c).is_file()]
    outputs = [out_dir / "transfer.csv", out_dir / "transfer.parquet", out_dir / "examples.npz"]
    if not sources:
        for path in outputs:
            path.unlink(missing_ok=True)
        return None
    from bench.cells import is_input_transform

    jobs = [j for j in plan_models(runner.matrix, runner.source) if not is_input_transform(j.defense)]
    rows: list[dict] = []
    examples: list[dict] = []
    computed = cached = 0
    models: dict[str, nn.Module | None] = {}
    for source in sources:
        with np.load(runner.images_path(source)) as z:
            images = {k: z[k] for k in z.files}
        info = read_dataset_info(cache_dir, source.model.dataset_key) or {}
        classes = list(info.get("classes", []))
        num_classes = len(classes) or int(images["label"].max()) + 1
        targets = [j for j in jobs if j.task == source.model.task]
        targets.sort(key=lambda j: j.key != source.model_key)  # the source's own model first
        own: Scores | None = None
        for target in targets:
            if target.key not in models:
                models[target.key] = _load_model(cache_dir, target, images["x"].shape[1], num_classes)
            model = models[target.key]
            if model is None:
                runner.progress(f"transfer {source.model.label} -> {target.label}: no trained model; left out")
                continue
            scores, hit = _pair_scores(cache_dir, pair_key(source.key, target.key),
                                       lambda m=model: score_images(m, images["x"], images["adv"], images["label"]))  # fmt: skip
            cached, computed = cached + hit, computed + (not hit)
            if target.key == source.model_key:
                own = scores  # the first target: the source model itself
            if own is None:
                break
            rows += transfer_rows(source, target, images, own, scores)
        if own is None:
            continue
        picked = pick_examples(images["label"], images["x"], own)
        arrays = {"x": images["x"][picked], "adv": images["adv"][:, picked], "label": images["label"][picked],
                  "sample": images["sample"][picked], "epsilon_255": images["epsilon_255"],
                  "clean_prob": own.clean_prob[picked], "adv_prob": own.adv_prob[:, picked],
                  "clean_pred": own.clean_pred[picked], "adv_pred": own.adv_pred[:, picked]}  # fmt: skip
        examples.append({"task": str(source.model.task), "detector": str(source.model.detector),
                         "defense": str(source.model.defense), "attack": str(source.attack), "classes": classes,
                         "arrays": arrays})  # fmt: skip
    table = conform(pd.DataFrame(rows, columns=list(TRANSFER_COLUMNS)), TRANSFER_COLUMNS)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "transfer.csv", table.to_csv(index=False))
    atomic_write(out_dir / "transfer.parquet", lambda f: table.to_parquet(f, index=False))
    write_examples(out_dir / "examples.npz", examples)
    runner.stats.update({"transfer_pairs_computed": computed, "transfer_pairs_cached": cached})
    runner.timings["transfer"] = time.perf_counter() - start
    runner.progress(f"transfer: {len(sources)} sources x their task's models, {computed} pairs scored, "
                    f"{cached} from cache ({time.perf_counter() - start:.1f}s) -> transfer.csv, examples.npz")  # fmt: skip
    return table
