"""Cheap per-model probes behind the trust flags (bench/flags.py, docs/flags.md).

Three questions a robustness number cannot answer about itself, asked once per trained model
(and attacker's gradient, for input transforms) on the cell's attacked test subset:

* ``zero_gradient_share``: the share of clean-correct samples whose input gradient of the logit
  margin is all zero or not finite. The margin (the best other logit minus the true one, the
  loss of C&W and AutoAttack's DLR) does not saturate: cross entropy underflows to exactly 0 in
  float32 on very confident correct predictions, which is saturation, not masking.
* ``unbounded_robust_accuracy``: robust accuracy under a native PyTorch PGD with a budget far
  beyond any matrix epsilon (Linf :data:`UNBOUNDED_EPS`, margin loss, :data:`STEPS` sign steps of
  :data:`STEP` from the clean image). On a differentiable detector it must reach about 0 (Pintor
  et al. 2022, "unconstrained attack failure"). It starts from the clean image, not a random
  point of the ball: uniform noise of 64 grey levels drives the truncating front ends of Bayar
  and SRM into saturation, where their gradient vanishes, and the probe would then measure its
  own failure (13% left on bayar + grad-penalty, where the matrix's PGD reaches 0 at 16/255).
  Its first gradient is the one ``zero_gradient_share`` inspects.
* ``loss_not_increasing_share``: from the same run, the share of clean-correct samples whose
  margin never rose above its value at the clean image (Pintor et al.'s incomplete optimisation).

Each probe is cached as one JSON file under ``<cache>/probes/`` keyed by the model key, the
defence and gradient, the attacked subset and the code (this file, bench/cells.py), so a rerun
costs nothing and editing a probe recomputes only the probes (never a cell).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import pandas as pd

from bench.cache import atomic_write_text, digest, files_digest
from bench.stats import rate
from bench.versions import package_version

if TYPE_CHECKING:
    import torch
    from torch import nn

    from bench.data import ImageSource
    from bench.matrix import Matrix
    from bench.runner import ModelJob

UNBOUNDED_EPS = 64 / 255  # Linf, [0, 1] units: 4x the largest default epsilon, a quarter of the pixel range
STEP = 2 / 255  # Linf step of the unbounded probe (sign of the gradient): two grey levels
STEPS = 32  # STEPS x STEP = UNBOUNDED_EPS: the whole ball is reachable; a sample stops once fooled
BATCH = 500

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


def margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample logit margin max_{j != y} z_j - z_y: positive exactly when the sample is misclassified."""
    import torch

    true = logits.gather(1, y[:, None])[:, 0]
    others = logits.masked_fill(torch.nn.functional.one_hot(y, logits.shape[1]).bool(), float("-inf"))
    return others.max(dim=1).values - true


def margin_pgd(model: nn.Module, x: np.ndarray, y: np.ndarray, *, steps: int = STEPS, step: float = STEP,
               eps: float = UNBOUNDED_EPS, surrogate: nn.Module | None = None) -> dict[str, np.ndarray]:  # fmt: skip
    """Linf PGD on the margin from the clean images, judged on ``model``, per sample.

    Steps of ``step`` (sign of the gradient) projected on the ``eps`` ball and [0, 1]; a sample
    stops once fooled, and the run stops when no sample moves any more (a deterministic model
    would only repeat itself). ``surrogate``: take the gradients (and the margin) from this
    model and judge on ``model`` (the oblivious evaluation of an input transform).

    Returns boolean arrays: ``zero_gradient`` (all-zero or non-finite margin gradient at the
    clean image), ``fooled`` (misclassified at some iterate) and ``rose`` (margin rose above its
    value at the clean image at some step).
    """
    import torch

    attacker = surrogate if surrogate is not None else model
    out: dict[str, list[np.ndarray]] = {"zero_gradient": [], "fooled": [], "rose": []}
    for i in range(0, len(x), BATCH):
        x0 = torch.from_numpy(np.ascontiguousarray(x[i : i + BATCH], dtype=np.float32))
        yb = torch.from_numpy(y[i : i + BATCH])
        adv = x0.clone()
        fooled = torch.zeros(len(x0), dtype=torch.bool)
        zero = torch.zeros(len(x0), dtype=torch.bool)
        start = torch.zeros(len(x0))
        best = torch.full((len(x0),), float("-inf"))
        active = torch.arange(len(x0))
        grad = torch.zeros(0)
        for k in range(steps + 1):
            xa = adv[active].clone().requires_grad_(k == 0)
            with torch.set_grad_enabled(k == 0):  # at the clean image: value and gradient in one pass
                logits = attacker(xa)
                value = margin(logits, yb[active])
            if k == 0:
                (grad,) = torch.autograd.grad(value.sum(), xa, allow_unused=True)
            with torch.no_grad():
                pred = logits.argmax(1) if surrogate is None else model(xa.detach()).argmax(1)
            wrong = pred != yb[active]
            fooled[active] |= wrong
            value = value.detach()
            if k == 0:
                start[active] = value
            else:
                best[active] = torch.maximum(best[active], value)
                active = active[~wrong]  # fooled after a step: done (its margin rose)
            if k == steps or active.numel() == 0:
                break
            if k > 0:  # the gradient of the samples still correct
                xa = adv[active].clone().requires_grad_(True)
                (grad,) = torch.autograd.grad(margin(attacker(xa), yb[active]).sum(), xa, allow_unused=True)
            grad = torch.zeros_like(xa) if grad is None else grad.detach()
            if k == 0:
                flat = grad.reshape(len(xa), -1)
                zero[active] = (flat == 0).all(dim=1) | ~torch.isfinite(flat).all(dim=1)
            moved = xa.detach() + step * torch.nan_to_num(grad, nan=0.0).sign()
            x_act = x0[active]
            moved = torch.minimum(torch.maximum(moved, x_act - eps), x_act + eps).clamp(0.0, 1.0)
            if torch.equal(moved, adv[active]):
                break  # nothing moves: every further step would be the same
            adv[active] = moved
        out["zero_gradient"].append(zero.numpy())
        out["fooled"].append(fooled.numpy())
        out["rose"].append((best > start).numpy())
    return {k: np.concatenate(v) if v else np.zeros(0, dtype=bool) for k, v in out.items()}


def probe_model(model: nn.Module, x: np.ndarray, y: np.ndarray, *, seed: int,
                surrogate: nn.Module | None = None) -> dict:  # fmt: skip
    """All three probes of one detector on (x, y); a dict of the :data:`PROBE_COLUMNS` numbers."""
    import torch

    from bench.attacks.base import predict

    start = time.perf_counter()
    model.eval()
    if surrogate is not None:
        surrogate.eval()
    x = np.ascontiguousarray(x, dtype=np.float32)
    y = np.asarray(y, dtype=np.int64)
    with torch.random.fork_rng():  # leave the caller's global RNG (and the cells' seeding) alone
        torch.manual_seed(seed)
        correct = predict(model, x) == y
        run = margin_pgd(model, x[correct], y[correct], surrogate=surrogate)
    zero, fooled, rose = run["zero_gradient"], run["fooled"], run["rose"]
    robust = np.zeros(len(y), dtype=bool)
    robust[np.flatnonzero(correct)] = ~fooled
    out = {"n": len(y), "clean_correct": int(correct.sum()), "unbounded_eps": UNBOUNDED_EPS, "unbounded_steps": STEPS}
    for name, flags in (("zero_gradient_share", zero), ("unbounded_robust_accuracy", robust),
                        ("loss_not_increasing_share", ~rose)):  # fmt: skip
        value, low, high = rate(flags)
        out.update({name: value, f"{name}_low": low, f"{name}_high": high})
    out["seconds"] = time.perf_counter() - start
    return out


def _code_digest() -> str:
    """This file and bench/cells.py (which picks the attacked subset, :func:`bench.cells.test_subset`)."""
    return files_digest([Path(__file__), Path(__file__).with_name("cells.py")])


def probe_key(job: ModelJob, gradient: str, matrix: Matrix) -> str:
    """Content hash of everything that determines a model's probe."""
    from defenses import DEFENSES

    return digest("probe", job.key, str(job.defense), DEFENSES.entry(job.defense.name).source_digest, gradient,
                  matrix.n_samples, matrix.seed, _code_digest(), package_version("torch"))  # fmt: skip


def run_probes(
    jobs: list[ModelJob],
    matrix: Matrix,
    source: ImageSource,
    cache_dir: Path,
    *,
    progress: Callable[[str], None] = lambda _: None,
) -> pd.DataFrame:
    """Probe every trained model of ``jobs`` (per attacker's gradient), from the cache where possible.

    A model that failed to train is skipped; a probe that fails is a row with an ``error`` (its
    flags stay silent) and is not cached. Datasets and models are read from the cache.
    """
    from bench.cells import attack_gradients, is_input_transform, test_subset
    from bench.data import build_dataset
    from bench.training import read_meta, train_or_load
    from defenses import create_defense

    rows, datasets = [], {}
    for job in jobs:
        if read_meta(cache_dir, job.key) is None:
            continue
        trained = None
        for gradient in attack_gradients(job.defense):
            key = probe_key(job, gradient, matrix)
            path = cache_dir / "probes" / f"{key}.json"
            base = {"task": str(job.task), "detector": str(job.detector), "defense": str(job.defense),
                    "gradient": gradient, "model": job.key, "error": ""}  # fmt: skip
            if path.is_file():
                rows.append({**base, **json.loads(path.read_text())})
                continue
            try:
                if job.task not in datasets:
                    datasets = {job.task: build_dataset(job.task, source, matrix.data, matrix.seed, cache_dir)}
                dataset = datasets[job.task]
                if trained is None:
                    trained = train_or_load(dataset, job.detector, job.trained_as, matrix.training, matrix.seed,
                                            cache_dir, key=job.key)  # fmt: skip
                indices = test_subset(dataset, matrix.n_samples, matrix.seed)
                model, surrogate = trained.model, None
                if is_input_transform(job.defense):
                    model = create_defense(job.defense).wrap(trained.model, gradient, matrix.seed)
                    surrogate = trained.model if gradient == "oblivious" else None
                numbers = probe_model(model, dataset.floats("test")[indices], dataset.y["test"][indices],
                                      seed=matrix.seed, surrogate=surrogate)  # fmt: skip
            except Exception as err:  # a failed probe leaves its flags silent, not the run failed
                rows.append({**base, "error": f"{type(err).__name__}: {err}".splitlines()[0]})
                progress(f"probe {job.label} ({gradient}): FAILED {rows[-1]['error']}")
                continue
            atomic_write_text(path, json.dumps(numbers, indent=1))
            rows.append({**base, **numbers})
            progress(f"probe {job.label} ({gradient}): zero gradients {numbers['zero_gradient_share']:.3f}, "
                     f"PGD at {UNBOUNDED_EPS * 255:g}/255 robust {numbers['unbounded_robust_accuracy']:.3f}, "
                     f"loss not increasing {numbers['loss_not_increasing_share']:.3f} ({numbers['seconds']:.1f}s)")
    return conform_probes(pd.DataFrame(rows))


def conform_probes(frame: pd.DataFrame) -> pd.DataFrame:
    """The probes table in its schema (absent numbers NaN, absent counts 0)."""
    for column, dtype in PROBE_COLUMNS.items():
        if column not in frame.columns:
            frame[column] = 0 if dtype == "int64" else ("" if dtype == "string" else np.nan)
    ints = [c for c, t in PROBE_COLUMNS.items() if t == "int64"]
    frame[ints] = frame[ints].fillna(0)
    return frame[list(PROBE_COLUMNS)].astype(PROBE_COLUMNS).reset_index(drop=True)
