"""Cross-evaluation of every task x detector x defence x attack: plan, cache, run, write.

The unit of work is a *cell*: one attack swept over the matrix's epsilons on one trained
(task, detector, defence). Cells are independent and keyed by a content hash of everything
that determines them; each is stored as soon as it finishes, so an interrupted run loses at
most the cell in progress and a rerun computes nothing already done. Failures become rows
with an ``error`` and are never cached.
"""

from __future__ import annotations

import json
import os
import platform
import re
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import pandas as pd

from bench.cache import atomic_write, atomic_write_text, digest, files_digest
from bench.cells import attack_gradients, compute_cell, is_input_transform, positive_class
from bench.data import ImageSource, builtin_source, dataset_key, folder_source, read_dataset_info
from bench.matrix import Matrix
from bench.registry import Spec
from bench.schema import MATRIX_COLUMNS, MODEL_COLUMNS, SAMPLE_COLUMNS, conform
from bench.flags import add_flags, flag_counts
from bench.stats import success_rate_intervals, wilson, wilson_arrays
from bench.versions import package_version, versions

if TYPE_CHECKING:
    from bench.data import Dataset
    from bench.training import ModelMeta, TrainedModel

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ModelJob:
    """One detector trained under one defence on one task's dataset.

    For an input-transform defence (inference time) the model trained is the undefended one:
    ``trained_as`` is ``none`` and ``key`` is that model's key, shared from the cache.
    """

    task: Spec
    detector: Spec
    defense: Spec
    dataset_key: str
    key: str
    trained_as: Spec

    @property
    def label(self) -> str:
        return f"{self.task} | {self.detector} | {self.defense}"


@dataclass(frozen=True)
class Cell:
    """One attack sweep on one trained detector x defence, with the attacker's gradient.

    ``gradient`` is "exact" except on input transforms, which are attacked obliviously, through
    autograd and adaptively ("oblivious", "exact", "bpda" / "eot"; see defenses/input_transforms.py).
    """

    model: ModelJob
    attack: Spec
    key: str
    gradient: str = "exact"

    @property
    def model_key(self) -> str:
        return self.model.key

    @property
    def label(self) -> str:
        via = f" ({self.gradient})" if len(attack_gradients(self.model.defense)) > 1 else ""
        return f"{self.model.label} | {self.attack}{via}"



@dataclass
class RunResult:
    """What a run produced: the tidy tables, where they were written and what was computed."""

    table: pd.DataFrame
    samples: pd.DataFrame
    models: pd.DataFrame
    out_dir: Path
    stats: dict = field(default_factory=dict)


def _attack_code_digest() -> str:
    """The cell computation, the post-processing of adversarial images and the attack code every
    entry shares (each entry's own file is hashed apart). This file (orchestration) is not hashed."""
    from bench.attacks import ATTACKS

    here = Path(__file__).parent
    return files_digest([here / "cells.py", here / "postprocess.py", *ATTACKS.shared_files()])


def cell_key(model_key: str, defense: Spec, attack: Spec, gradient: str, matrix: Matrix) -> str:
    """Content hash of everything that determines a cell's numbers."""
    from bench.attacks import ATTACKS
    from defenses import DEFENSES

    return digest(
        "cell",
        model_key,
        str(defense),  # an input transform shares the undefended model's key: its own name and code count here
        DEFENSES.entry(defense.name).source_digest,
        gradient,
        str(attack),
        ATTACKS.entry(attack.name).source_digest,
        _attack_code_digest(),
        list(matrix.epsilons_255),
        matrix.n_samples,
        matrix.seed,
        package_version(ATTACKS.entry(attack.name).info.package),
        package_version("torch"),
    )


def images_attack(matrix: Matrix) -> Spec | None:
    """The attack whose 8-bit adversarial images a run keeps (for transferability and the gallery):
    the matrix's first white-box fixed-epsilon Linf attack, a PGD if there is one."""
    from bench.attacks import create_attack

    candidates = [a for a in matrix.attacks
                  if (m := create_attack(a)).threat == "white-box" and not m.minimum_norm and m.norm == "linf"]  # fmt: skip
    return next((a for a in candidates if "pgd" in a.name), candidates[0] if candidates else None)


def keeps_images(cell: Cell, matrix: Matrix) -> bool:
    """Whether a cell's images are kept: the :func:`images_attack` on training-time defences
    (input transforms are left out: their images are the undefended detector's or its transform's)."""
    return cell.gradient == "exact" and not is_input_transform(cell.model.defense) and cell.attack == images_attack(matrix)


def plan_models(matrix: Matrix, source: ImageSource) -> list[ModelJob]:
    """Every trained model the matrix needs, with its keys; nothing is computed."""
    from bench.training import model_key
    from defenses import DEFENSES

    none = DEFENSES.resolve("none")
    jobs = []
    for task in matrix.tasks:
        dkey = dataset_key(task, source, matrix.data, matrix.seed)
        for detector in matrix.detectors:
            for defense in matrix.defenses:
                trained_as = none if is_input_transform(defense) else defense
                key = model_key(dkey, detector, trained_as, matrix.training, matrix.seed)
                jobs.append(ModelJob(task, detector, defense, dkey, key, trained_as))
    return jobs


def plan(matrix: Matrix, source: ImageSource) -> list[Cell]:
    """Every cell of the matrix with its keys; nothing is computed."""
    return [
        Cell(job, attack, cell_key(job.key, job.defense, attack, gradient, matrix), gradient)
        for job in plan_models(matrix, source)
        for attack in matrix.attacks
        for gradient in attack_gradients(job.defense)
    ]



def error_rows(cell: Cell, matrix: Matrix, message: str) -> pd.DataFrame:
    """Rows recording a failed cell (never cached)."""
    from bench.attacks import ATTACKS, create_attack
    from bench.postprocess import VARIANTS

    info = ATTACKS.entry(cell.attack.name).info
    attack = create_attack(cell.attack)
    nan = float("nan")
    rows = [
        {**{c: nan for c in MATRIX_COLUMNS}, "task": str(cell.model.task), "detector": str(cell.model.detector),
         "defense": str(cell.model.defense), "attack": str(cell.attack), "gradient": cell.gradient,
         "library": info.library, "norm": info.norm, "threat": attack.threat, "minimum_norm": attack.minimum_norm,
         "quantized": quantized, "postprocess": postprocess,
         "epsilon": e / 255.0 if info.norm == "linf" else nan, "epsilon_255": e, "n": 0, "attacked": 0,
         "seed": matrix.seed, "cell": cell.key, "model": cell.model_key, "error": message}  # fmt: skip
        for quantized, postprocess in VARIANTS
        for e in matrix.epsilons_255
    ]
    return conform(pd.DataFrame(rows), MATRIX_COLUMNS)


class Runner:
    """Runs one matrix into ``results_dir/<profile>``, with a shared cache folder."""

    def __init__(
        self,
        matrix: Matrix,
        *,
        images: str | Path | None = None,
        results_dir: str | Path = "results",
        cache_dir: str | Path | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.matrix = matrix
        self.source = folder_source(images) if images is not None else builtin_source()
        # a run on the user's own photographs must not overwrite the built-in data's tables
        name = matrix.profile if images is None else f"{matrix.profile}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', self.source.label)}"
        self.out_dir = Path(results_dir) / name
        self.cache_dir = Path(cache_dir) if cache_dir is not None else Path(results_dir) / ".cache"
        self.progress = progress or (lambda _: None)
        self.rows: dict[str, pd.DataFrame] = {}
        self.samples: dict[str, pd.DataFrame] = {}
        self.models: dict[str, dict] = {}
        self.stats = {"cells": 0, "cells_computed": 0, "cells_cached": 0, "cells_failed": 0,
                      "models_trained": 0, "models_cached": 0, "models_failed": 0}  # fmt: skip
        self.timings: dict[str, float] = {}
        self.datasets: dict[str, dict | None] = {}
        self.probes: pd.DataFrame | None = None  # per-model probes behind the trust flags (bench/probes.py)

    # -- cache -------------------------------------------------------------------------------
    def _cell_paths(self, cell: Cell) -> tuple[Path, Path]:
        base = self.cache_dir / "cells" / cell.key
        return base.with_suffix(".rows.parquet"), base.with_suffix(".samples.parquet")

    def images_path(self, cell: Cell) -> Path:
        """Where a cell's 8-bit images are cached (cells that keep them: :func:`keeps_images`)."""
        return (self.cache_dir / "cells" / cell.key).with_suffix(".images.npz")

    def _cached(self, cell: Cell) -> bool:
        paths = [*self._cell_paths(cell), *([self.images_path(cell)] if keeps_images(cell, self.matrix) else [])]
        return all(p.is_file() for p in paths)

    def _store(self, cell: Cell, rows: pd.DataFrame, samples: pd.DataFrame, images: dict | None) -> None:
        rows_path, samples_path = self._cell_paths(cell)
        if images is not None:
            atomic_write(self.images_path(cell), lambda f: np.savez_compressed(f, **images))
        atomic_write(samples_path, lambda f: samples.to_parquet(f, index=False))
        atomic_write(rows_path, lambda f: rows.to_parquet(f, index=False))  # written last: marks completion

    # -- run ---------------------------------------------------------------------------------
    def run(self) -> RunResult:
        """Run every cell (computing only what the cache lacks) and write the outputs.

        Nothing is written under the results folder before the first cell finishes; on an
        interruption or error the outputs of every finished cell are written before re-raising.
        """
        cells = plan(self.matrix, self.source)
        self.stats["cells"] = len(cells)
        self.progress(f"{len(cells)} cells -> {self.out_dir}")
        self._execute(cells)
        self._probe()  # post-cell stage: probes.csv, the model probes of the trust flags
        from bench.transfer import run_transfer  # post-cell stage: transfer.csv, examples.npz

        run_transfer(self, cells)
        return self._write_outputs()

    def _probe(self) -> None:
        """Probe every trained model for the trust flags (bench/probes.py; cached, a few seconds each)."""
        from bench.probes import run_probes

        t = time.perf_counter()
        try:
            self.probes = run_probes(plan_models(self.matrix, self.source), self.matrix, self.source, self.cache_dir,
                                     progress=self.progress)  # fmt: skip
        except BaseException:
            self._write_outputs()
            raise
        self.timings["probes"] = time.perf_counter() - t

    def train(self) -> pd.DataFrame:
        """Only train (or fetch from the cache) every model of the matrix; return the models table."""
        self._execute([])
        return self._frames()[2]

    def _execute(self, cells: list[Cell]) -> None:
        import torch

        torch.use_deterministic_algorithms(True, warn_only=True)
        self._start = time.perf_counter()
        try:
            self._run_jobs(cells)
        except BaseException:
            if self.rows:
                self._write_outputs()
            raise

    def _run_jobs(self, cells: list[Cell]) -> None:
        from bench.training import read_meta

        datasets: dict[Spec, Dataset] = {}
        done = 0
        for job in plan_models(self.matrix, self.source):
            group = [c for c in cells if c.model == job]
            meta = read_meta(self.cache_dir, job.key)
            trained = None
            if meta is None or not all(self._cached(c) for c in group):
                if job.task not in datasets:
                    datasets = {job.task: self._dataset(job.task)}  # one task's patches in memory at a time
                trained = self._model(job, datasets[job.task])
            else:  # the model and every cell of it are cached: its stored metadata describes it
                self.stats["models_cached"] += 1
                self.models[job.label] = self._model_row(job, meta, True, "")
            if str(job.task) not in self.datasets:
                self.datasets[str(job.task)] = read_dataset_info(self.cache_dir, job.dataset_key)
            for cell in group:
                done += 1
                self._cell(cell, datasets.get(job.task), trained, f"[{done}/{len(cells)}]")
                self._write_tables()

    def _dataset(self, task: Spec) -> Dataset:
        from bench.data import build_dataset

        t = time.perf_counter()
        dataset = build_dataset(task, self.source, self.matrix.data, self.matrix.seed, self.cache_dir)
        self.timings[f"dataset {task}"] = time.perf_counter() - t
        sizes = ", ".join(f"{s} {v['patches']} patches/{len(v['photos'])} photos" for s, v in dataset.info["splits"].items())
        self.progress(f"dataset {task} on {self.source.label}: {sizes}")
        return dataset

    def _model(self, job: ModelJob, dataset: Dataset) -> TrainedModel | None:
        from bench.training import read_meta, train_or_load

        self.progress(f"model {job.label}: {'training' if read_meta(self.cache_dir, job.key) is None else 'cached'}")
        try:
            trained = train_or_load(dataset, job.detector, job.trained_as, self.matrix.training, self.matrix.seed,
                                    self.cache_dir, log=lambda m: self.progress(f"  {job.label}: {m}"), key=job.key)  # fmt: skip
        except Exception as err:  # a failed model fails its cells, not the run
            self.stats["models_failed"] += 1
            self.models[job.label] = self._model_row(job, None, False, _describe(err))
            self.progress(f"model {job.label}: FAILED {_describe(err)}")
            return None
        meta = trained.meta
        self.stats["models_cached" if trained.from_cache else "models_trained"] += 1
        self.models[job.label] = self._model_row(job, meta, trained.from_cache, "")
        self.progress(f"model {job.label}: test accuracy {meta.test_accuracy:.3f} (n={meta.test_n}), "
                      f"trained in {meta.seconds:.0f}s")  # fmt: skip
        return trained

    @staticmethod
    def _model_row(job: ModelJob, meta: ModelMeta | None, from_cache: bool, error: str) -> dict:
        row = {"task": str(job.task), "detector": str(job.detector), "defense": str(job.defense), "model": job.key,
               "from_cache": from_cache, "error": error}  # fmt: skip
        if meta is None:
            nan = float("nan")
            return {**row, "test_accuracy": nan, "test_accuracy_low": nan, "test_accuracy_high": nan, "test_n": 0,
                    "val_accuracy": nan, "parameters": 0, "epochs": 0, "train_seconds": nan}  # fmt: skip
        low, high = wilson(round(meta.test_accuracy * meta.test_n), meta.test_n)
        return {**row, "test_accuracy": meta.test_accuracy, "test_accuracy_low": low, "test_accuracy_high": high,
                "test_n": meta.test_n, "val_accuracy": meta.val_accuracy, "parameters": meta.parameters,
                "epochs": len(meta.history), "train_seconds": meta.seconds}  # fmt: skip

    def _cell(self, cell: Cell, dataset: Dataset | None, trained: TrainedModel | None, counter: str) -> None:
        if self._cached(cell):
            rows_path, samples_path = self._cell_paths(cell)
            self.rows[cell.key] = pd.read_parquet(rows_path)
            self.samples[cell.key] = pd.read_parquet(samples_path)
            self.stats["cells_cached"] += 1
            self.progress(f"{counter} {cell.label}: cached")
            return
        if trained is None or dataset is None:
            self.rows[cell.key] = error_rows(cell, self.matrix, self.models[cell.model.label]["error"])
            self.stats["cells_failed"] += 1
            self.progress(f"{counter} {cell.label}: FAILED (model failed)")
            return
        t = time.perf_counter()
        try:
            rows, samples, images = compute_cell(cell, self.matrix, dataset, trained,
                                                 keep_images=keeps_images(cell, self.matrix))
        except Exception as err:
            self.rows[cell.key] = error_rows(cell, self.matrix, _describe(err))
            self.stats["cells_failed"] += 1
            self.progress(f"{counter} {cell.label}: FAILED {_describe(err)}")
            return
        self._store(cell, rows, samples, images)
        self.rows[cell.key], self.samples[cell.key] = rows, samples
        self.stats["cells_computed"] += 1
        floats = rows[(rows["quantized"] == "float") & (rows["postprocess"] == "none")]
        jpeg75 = rows[rows["postprocess"] == "jpeg75"]
        summary = ", ".join(f"e={e:g}: {r:.3f}" for e, r in zip(floats.epsilon_255, floats.robust_accuracy))
        self.progress(f"{counter} {cell.label}: clean {floats.clean_accuracy.iloc[0]:.3f}, robust {summary}; "
                      f"8-bit + JPEG 75 at e={jpeg75.epsilon_255.iloc[-1]:g}: {jpeg75.robust_accuracy.iloc[-1]:.3f} "
                      f"({time.perf_counter() - t:.1f}s)")  # fmt: skip

    # -- outputs -----------------------------------------------------------------------------
    def _frames(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        from bench.ensemble import ensemble_rows

        table = (pd.concat(self.rows.values()) if self.rows else pd.DataFrame(columns=list(MATRIX_COLUMNS)))
        samples = (pd.concat(self.samples.values()) if self.samples else pd.DataFrame(columns=list(SAMPLE_COLUMNS)))
        models = pd.DataFrame(list(self.models.values()), columns=list(MODEL_COLUMNS))
        table, samples = conform(table, MATRIX_COLUMNS), conform(samples, SAMPLE_COLUMNS)
        positive = {task: positive_class(info["classes"]) if info else None for task, info in self.datasets.items()}
        ensemble = ensemble_rows(table, samples, positive)
        if not ensemble.empty:
            table = conform(pd.concat([table, ensemble]), MATRIX_COLUMNS)
        table = conform(add_flags(success_rate_intervals(table), self.probes), MATRIX_COLUMNS)  # bench/flags.py
        splits = {t: (info or {}).get("splits", {}) for t, info in self.datasets.items()}
        val_n = models["task"].map(lambda t: (splits.get(t, {}).get("val") or {}).get("patches", 0)).astype(float)
        low, high = wilson_arrays(np.rint(models["val_accuracy"].astype(float) * val_n), val_n)
        models = models.assign(val_accuracy_low=low, val_accuracy_high=high)
        return table, samples, conform(models, MODEL_COLUMNS)

    def _write_tables(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        table, samples, models = self._frames()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.out_dir / "matrix.csv", table.to_csv(index=False))
        atomic_write(self.out_dir / "matrix.parquet", lambda f: table.to_parquet(f, index=False))
        atomic_write(self.out_dir / "samples.parquet", lambda f: samples.to_parquet(f, index=False))
        atomic_write_text(self.out_dir / "models.csv", models.to_csv(index=False))
        if self.probes is not None:
            atomic_write_text(self.out_dir / "probes.csv", self.probes.to_csv(index=False))
        return table, samples, models

    def _write_outputs(self) -> RunResult:
        from bench.plots import plot_curves, plot_min_norm_curves

        self.timings["total_seconds"] = time.perf_counter() - self._start
        table, samples, models = self._write_tables()
        outputs = ["matrix.csv", "matrix.parquet", "samples.parquet", "models.csv"]
        outputs += ["probes.csv"] if self.probes is not None else []
        if table["robust_accuracy"].notna().any():
            plot_curves(table, self.out_dir / "curves")
            outputs += ["curves.pdf", "curves.png"]
            if plot_min_norm_curves(table, samples, self.out_dir / "min-norm-curves"):
                outputs += ["min-norm-curves.pdf", "min-norm-curves.png"]
        run_info = {
            "profile": self.matrix.profile,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "versions": versions(),
            "host": {"platform": platform.platform(), "cpu_count": os.cpu_count(),
                     "torch_threads": _torch_threads()},  # fmt: skip
            "configuration": self.matrix.to_dict(),
            "images": {"source": self.source.label, "files": len(self.source.files), "digest": self.source.digest},
            "datasets": self.datasets,
            "stats": self.stats,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "outputs": outputs,
            "flags": flag_counts(table),  # rows raising each trust flag (docs/flags.md)
        }
        atomic_write_text(self.out_dir / "run.json", json.dumps(run_info, indent=2, default=str) + "\n")
        return RunResult(table, samples, models, self.out_dir, dict(self.stats, **self.timings))


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def _describe(err: BaseException) -> str:
    """One-line description of an exception for the ``error`` column."""
    where = traceback.extract_tb(err.__traceback__)[-1] if err.__traceback__ else None
    loc = f" at {Path(where.filename).name}:{where.lineno}" if where else ""
    return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}{loc}"


def run_matrix(
    matrix: Matrix | str | Path,
    *,
    images: str | Path | None = None,
    results_dir: str | Path = "results",
    cache_dir: str | Path | None = None,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Run a matrix (a Matrix or a TOML path) and return its tidy table (one row per cell x epsilon)."""
    from bench.matrix import load_matrix

    if not isinstance(matrix, Matrix):
        matrix = load_matrix(matrix)
    runner = Runner(matrix, images=images, results_dir=results_dir, cache_dir=cache_dir, progress=progress)
    return runner.run().table
