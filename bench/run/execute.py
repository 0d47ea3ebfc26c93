"""Carrying out a plan: the runner and its serial executor (one process, one model after another).

It takes the plan of a matrix (bench/run/plan.py), serves every result the store already holds
(bench/run/store.py) and computes the rest with the stage functions - datasets, training, cells,
probes, transfer scores - storing each the moment it is finished. Every few seconds
(``refresh_seconds``) and once at the end it hands the tables of everything finished so far to a
*sink* (the results folder writer of bench/outputs, given by the caller); the store holds every
finished cell the moment it is done, so an interrupted run loses at most the cells in progress and
a rerun computes nothing already done. A failure is a row with an ``error``, never a stored result.
The executor writes no file of its own and draws no figure.

The Dask executor (bench/run/distributed.py) is a subclass that runs the same stage functions as
tasks on workers; everything else - serving the store, the tables, the sink - is this class's.
"""

from __future__ import annotations

import contextlib
import os
import platform
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from bench.attacks import attack_class
from bench.core import interrupt
from bench.core.malloc import release_free_memory, tune_malloc
from bench.core.schema import DEVICE, MATRIX_COLUMNS, THREADS, TRAINING_SEED, TRANSFER_COLUMNS, conform
from bench.core.versions import versions
from bench.inputs.data import build_dataset
from bench.inputs.photos import ImageSource, builtin_source
from bench.run.cells import compute_cell
from bench.run.flags import flag_counts
from bench.run.networks import load_network
from bench.run.plan import Cell, ModelJob, Plan, ProbeJob, dataset_key, make_plan, pair_key, sweep
from bench.run.postprocess import VARIANTS
from bench.run.probes import UNBOUNDED_EPS, probe
from bench.run.scoring import Scores, score_images
from bench.run.store import CellOutput, Store
from bench.run.tables import Tables, assemble, compact_samples, concat_samples, model_row, probe_table
from bench.run.threads import torch_threads
from bench.run.training import TRAINING_THREADS, ModelMeta, TrainedModel, build_detector, train
from bench.run.transfer import example_entry, transfer_rows
from detectors import create_detector

if TYPE_CHECKING:
    import torch
    from torch import nn

    from bench.core.config import DataConfig
    from bench.core.registry import Spec
    from bench.inputs.data import Dataset
    from bench.inputs.matrix import Matrix

Progress = Callable[[str], None]
Update = Callable[[Mapping[str, int]], None]  # the run's counts (Runner.stats), after every model and cell


class Sink(Protocol):
    """Where a run's outputs go (bench/outputs/formats.py, ``ResultsFolder``)."""

    def write_tables(
        self, table: pd.DataFrame, samples: pd.DataFrame, models: pd.DataFrame, probes: pd.DataFrame | None
    ) -> None: ...

    def write_transfer(self, table: pd.DataFrame | None, examples: list[dict[str, Any]]) -> None: ...

    def write_run_info(self, info: dict[str, Any]) -> None: ...


@dataclass
class RunResult:
    """What a run produced: its tables and what was computed or served from the cache."""

    table: pd.DataFrame
    samples: pd.DataFrame
    models: pd.DataFrame
    probes: pd.DataFrame | None = None
    transfer: pd.DataFrame | None = None
    stats: dict[str, Any] = field(default_factory=dict)


def cpu_model() -> str:
    """The processor's model name (Linux /proc/cpuinfo; elsewhere what the platform module says)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe(err: BaseException) -> str:
    """One-line description of an exception for the ``error`` column."""
    where = traceback.extract_tb(err.__traceback__)[-1] if err.__traceback__ else None
    loc = f" at {Path(where.filename).name}:{where.lineno}" if where else ""
    return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}{loc}"


class Busy(Exception):
    """Another run holds the claim on an entry (raised only when the caller chose not to wait)."""


def obtain_dataset(
    task: Spec, source: ImageSource, config: DataConfig, seed: int, store: Store, key: str | None = None
) -> Dataset:
    """A task's dataset from the store, or built and stored (``key``: its key, when the plan has it).

    Not claimed: building takes seconds and gives the same bytes in any run, and an unreadable
    image must be refused before anything is written, claims included.
    """
    key = key or dataset_key(task, source, config, seed)
    dataset = store.dataset(key)
    if dataset is None:
        dataset = build_dataset(task, source, config, seed, key=key)
        store.put_dataset(dataset)
    return dataset


def _stored_model(job: ModelJob, dataset: Dataset, store: Store) -> TrainedModel | None:
    meta = store.model_meta(job.key)
    if meta is None:
        return None
    model = store.load_weights(job.key, build_detector(job.detector, dataset))
    return None if model is None else TrainedModel(job.key, model, meta, from_cache=True)


def obtain_model(
    job: ModelJob,
    dataset: Dataset,
    matrix: Matrix,
    store: Store,
    log: Progress = lambda _: None,
    *,
    device: torch.device,
    wait: bool = True,
) -> TrainedModel:
    """A job's trained model from the store, or trained on ``device`` and stored (one ``log`` line
    per epoch).

    The training holds the model's claim; when another run holds it, wait for that run's model
    (``wait``) or raise :class:`Busy`.
    """
    stored = _stored_model(job, dataset, store)
    if stored is not None:
        return stored
    claim = store.claim("model", job.key)
    if not claim.acquire(wait=wait):
        raise Busy(claim.owner())
    try:
        stored = _stored_model(job, dataset, store)  # trained by another run while this one waited
        if stored is not None:
            return stored
        epochs = matrix.training.epochs

        def on_epoch(record: dict[str, Any]) -> None:
            loss, val = record["loss"], record["val_accuracy"]
            log(f"epoch {record['epoch']}/{epochs}: loss {loss:.4f}, val accuracy {val:.3f}")
            interrupt.check()  # a Ctrl-C swallowed during a training ends it at the epoch's end

        if job.pretrained:  # a network trained elsewhere: loaded, its accuracy measured
            model, meta = load_network(job.detector, dataset, job.network, device=device)
        else:
            model, meta = train(
                job.detector, dataset, job.trained_as, matrix.training, job.training_seed, on_epoch, device=device
            )
        store.put_model(job.key, model, meta)
    finally:
        claim.release()
    release_free_memory()  # a training's working set (autograd's saved tensors) back to the system
    return TrainedModel(job.key, model, meta, from_cache=False)


def attacks_run(plan: Plan) -> dict[str, dict[str, str]]:
    """Per matrix attack and gradient, the attack a cell runs where it is another (BPDA runs more
    steps): recorded in run.json, so that what reads the tables can pair the rows."""
    out: dict[str, dict[str, str]] = {}
    for cell in plan.cells:
        if cell.runs != cell.attack:
            out.setdefault(str(cell.attack), {})[cell.gradient] = str(cell.runs)
    return out


def error_rows(cell: Cell, matrix: Matrix, message: str) -> pd.DataFrame:
    """Rows recording a failed cell (never cached)."""
    cls = attack_class(cell.attack.name)
    nan = float("nan")
    job = cell.model
    rows = [
        {
            **dict.fromkeys(MATRIX_COLUMNS, nan),
            "task": str(job.task),
            "detector": str(job.detector),
            "defense": str(job.defense),
            "attack": str(cell.runs),
            "gradient": cell.gradient,
            "library": cls.library,
            "norm": cls.norm,
            "threat": cls.threat,
            "minimum_norm": cls.minimum_norm,
            "quantized": quantized,
            "postprocess": postprocess,
            "epsilon": e / 255.0 if cls.norm == "linf" else nan,
            "epsilon_255": e,
            "n": 0,
            "attacked": 0,
            "seed": matrix.seed,
            "training_seed": str(job.training_seed),
            "seeds": 1,
            "cell": cell.key,
            "model": cell.model_key,
            "error": message,
        }
        for quantized, postprocess in VARIANTS
        for e in matrix.epsilons_255
    ]
    return conform(pd.DataFrame(rows), MATRIX_COLUMNS)


class Runner:
    """Runs one matrix with a store (the cache folder) and a sink (the results folder).

    Args:
        matrix: the validated matrix.
        store: the cache the results are served from and stored into.
        source: the pristine photographs (default: the built-in ones).
        sink: receives the tables every ``refresh_seconds`` and at the end (None: nothing is
            written but the cache).
        progress: receives one line per step (model, cell, probe, stage).
        warn: receives the lines a user must see even when progress is hidden (a stage that
            failed); default: ``progress``.
        device: the device every stage runs on, canonical ("cpu", "cuda", "cuda:1"; resolved
            and checked by the caller, bench/core/devices.py); its kind is in the keys and tables.
        update: receives the run's counts after every model and cell (a live display).
        refresh_seconds: the tables go to the sink at most this often while cells finish (and
            always at the end): writing them is linear in the cells finished, so writing them
            after every cell would make a run quadratic in its size.
    """

    executor = "serial"

    def __init__(
        self,
        matrix: Matrix,
        *,
        store: Store,
        source: ImageSource | None = None,
        sink: Sink | None = None,
        progress: Progress | None = None,
        warn: Progress | None = None,
        device: str = "cpu",
        threads: int | None = None,
        update: Update | None = None,
        refresh_seconds: float = 5.0,
    ) -> None:
        import torch

        from bench.core.devices import device_kind

        self.matrix = matrix
        self.device = device
        self.device_kind = device_kind(device)
        # torch threads of every cell, probe and transfer pair: in their keys and the tables' threads
        # column (None: this process's count, which OMP_NUM_THREADS sets; training has its own)
        self.threads = threads if threads is not None else torch.get_num_threads()
        self.update = update or (lambda _: None)
        self.refresh_seconds = refresh_seconds
        self.refreshes = 0  # tables handed to the sink (tests check it stays small)
        self._refreshed = float("-inf")
        self._refresh_cost = 0.0
        self._gather: dict[str, tuple[int, pd.DataFrame | None]] = {}  # interim refreshes: frames so far
        self._position: dict[str, int] | None = None  # a cell's place in the plan
        self.warn = warn or progress or (lambda _: None)
        self.store = store
        self.source = source if source is not None else builtin_source()
        self.sink = sink
        self.progress = progress or (lambda _: None)
        self.rows: dict[str, pd.DataFrame] = {}
        self.samples: dict[str, pd.DataFrame] = {}
        self.models: dict[str, dict[str, Any]] = {}
        self.datasets: dict[str, dict[str, Any] | None] = {}
        self.probes: pd.DataFrame | None = None
        self.transfer: pd.DataFrame | None = None
        self.stats: dict[str, int] = {
            "models": 0,
            "cells": 0,
            "cells_computed": 0,
            "cells_cached": 0,
            "cells_failed": 0,
            "models_trained": 0,
            "models_cached": 0,
            "models_failed": 0,
        }
        self.timings: dict[str, float] = {}
        self._attacks_run: dict[str, dict[str, str]] = {}
        self._plan: Plan | None = None
        self._loaded: tuple[Spec, Dataset] | None = None  # one task's patches in memory at a time
        self._start = time.perf_counter()

    # -- the run -------------------------------------------------------------------------------
    def run(self) -> RunResult:
        """Carry out the whole plan: models and cells, then the probes and the transfer stage.

        On an interruption or an error the outputs of every finished cell go to the sink
        before the exception is raised again.
        """
        from bench.core.devices import deterministic_algorithms, deterministic_cuda

        deterministic_cuda()
        deterministic_algorithms()
        tune_malloc()  # this process's allocator, for speed (numbers unchanged)
        self._start = time.perf_counter()
        plan = self.plan()
        self._attacks_run = attacks_run(plan)
        self._refreshed = self._start  # the first refresh is due refresh_seconds into the run
        self.stats["cells"], self.stats["models"] = len(plan.cells), len(plan.models)
        self.progress(f"{len(plan.cells)} cells")
        try:
            with torch_threads(self.threads):  # the count in the keys (training sets its own)
                self._models_and_cells(plan)
                self._probe(plan)
                self._transfer(plan)
        except BaseException:
            if self.rows:  # the tables of the finished cells, if the disk still takes them
                with contextlib.suppress(OSError):
                    self._finish()
            raise
        return self._finish()

    def train(self) -> pd.DataFrame:
        """Only train (or fetch from the store) every model of the matrix; return the models table."""
        from bench.core.devices import deterministic_algorithms

        deterministic_algorithms()
        tune_malloc()
        self._start = time.perf_counter()
        plan = self.plan()
        self.stats["models"] = len(plan.models)
        self._models_and_cells(plan, with_cells=False)
        return self.tables().models

    def plan(self) -> Plan:
        """The plan this runner carries out (the matrix on its images, for its device kind); made
        once (its keys hash the stage modules' code)."""
        if self._plan is None:
            self._plan = make_plan(self.matrix, self.source, self.device_kind, threads=self.threads)
        return self._plan

    @property
    def torch_device(self) -> torch.device:
        import torch

        return torch.device(self.device)

    def _models_and_cells(self, plan: Plan, *, with_cells: bool = True) -> None:
        """Every model and its cells. A model another run (on the same cache) is training is left
        for the end of the run, a cell another run is computing for the end of its model's cells,
        and then waited for: two runs share the work instead of doing it twice."""
        self._plan, self._loaded, self._position, self._gather = plan, None, None, {}
        later = [job for job in plan.models if not self._model_and_cells(job, plan, with_cells, wait=False)]
        for job in later:
            self._model_and_cells(job, plan, with_cells, wait=True)

    def _task_dataset(self, job: ModelJob) -> Dataset:
        """The patches of a job's task (one task's patches in memory at a time)."""
        if self._loaded is None or self._loaded[0] != job.task:
            self._loaded = (job.task, self._dataset(job))
        return self._loaded[1]

    def _model_and_cells(self, job: ModelJob, plan: Plan, with_cells: bool, *, wait: bool) -> bool:
        """A model and its cells; False (nothing done) when another run is training the model and
        ``wait`` is off."""
        cells = plan.cells_of(job) if with_cells else ()
        stored = {c.key: self.store.cell(c) for c in cells}
        meta = self.store.model_meta(job.key)
        trained, dataset = None, None
        if meta is None or any(v is None for v in stored.values()):
            dataset = self._task_dataset(job)
            try:
                trained = self._model(job, dataset, wait=wait)
            except Busy as busy:
                self.progress(f"model {job.label}: being trained by another run ({busy}); left for later")
                return False
        else:  # the model and every cell of it are stored: its metadata describes it
            self.stats["models_cached"] += 1
            self.models[job.label] = model_row(job, meta, True, "", device=self.device_kind)
            self.update(self.stats)
        if str(job.task) not in self.datasets:  # verified with its patches: rebuilt if damaged
            info = self.store.dataset_info(job.dataset_key)
            self.datasets[str(job.task)] = info if info is not None else self._task_dataset(job).info
        later = [c for c in cells if not self._cell(c, stored[c.key], dataset, trained, wait=False)]
        for cell in later:
            self._cell(cell, None, dataset, trained, wait=True)
        return True

    def _dataset(self, job: ModelJob) -> Dataset:
        start = time.perf_counter()
        dataset = obtain_dataset(job.task, self.source, self.matrix.data, self.matrix.seed, self.store, job.dataset_key)
        self.timings[f"dataset {job.task}"] = time.perf_counter() - start
        splits = dataset.info["splits"].items()
        sizes = ", ".join(f"{s} {v['patches']} patches/{len(v['photos'])} photos" for s, v in splits)
        self.progress(f"dataset {job.task} on {self.source.label}: {sizes}")
        return dataset

    def _model(self, job: ModelJob, dataset: Dataset, *, wait: bool) -> TrainedModel | None:
        """A job's model, stored or trained (None when its training failed); :class:`Busy` when
        another run is training it and ``wait`` is off."""
        cached = self.store.model_meta(job.key) is not None
        self.progress(f"model {job.label}: {'cached' if cached else 'loading' if job.pretrained else 'training'}")
        try:
            trained = obtain_model(
                job,
                dataset,
                self.matrix,
                self.store,
                log=lambda m: self.progress(f"  {job.label}: {m}"),
                device=self.torch_device,
                wait=wait,
            )
        except (Busy, OSError):  # another run trains it; the file system failed (a full disk): the run stops
            raise
        except Exception as err:  # noqa: BLE001 - a failed model fails its cells, not the run
            self.stats["models_failed"] += 1
            self.models[job.label] = model_row(job, None, False, describe(err), device=self.device_kind)
            self.update(self.stats)
            self.progress(f"model {job.label}: FAILED {describe(err)}")
            return None
        self.model_done(job, trained.meta, trained.from_cache)
        return trained

    def model_done(self, job: ModelJob, meta: ModelMeta, from_cache: bool) -> None:
        """Record a model that is trained (or was found in the store) and say so."""
        self.stats["models_cached" if from_cache else "models_trained"] += 1
        self.models[job.label] = model_row(job, meta, from_cache, "", device=self.device_kind)
        self.update(self.stats)
        how = "loaded, not trained" if job.pretrained else f"trained in {meta.seconds:.0f}s"
        self.progress(f"model {job.label}: test accuracy {meta.test_accuracy:.3f} (n={meta.test_n}), {how}")

    def _counter(self) -> str:
        return f"[{len(self.rows)}/{self.stats['cells']}]"

    def _cell(
        self,
        cell: Cell,
        stored: CellOutput | None,
        dataset: Dataset | None,
        trained: TrainedModel | None,
        *,
        wait: bool,
    ) -> bool:
        """Serve or compute one cell and hand the tables to the sink; False (nothing done) when
        another run is computing it and ``wait`` is off."""
        claim = None
        try:
            if stored is None and trained is not None and dataset is not None:
                claim = self.store.claim("cell", cell.key)
                if not claim.acquire(wait=wait):
                    return False
                stored = self.store.cell(cell)  # computed by another run while this one waited
            self._serve_or_compute(cell, stored, dataset, trained)
        finally:
            if claim is not None:
                claim.release()
        self.cell_done()
        return True

    def cell_done(self) -> None:
        """After every cell: the counts to the display, the tables to the sink when due; an
        interruption Python swallowed on the way ends the run here (bench/core/interrupt.py)."""
        self.update(self.stats)
        if time.perf_counter() - self._refreshed >= max(self.refresh_seconds, 10 * self._refresh_cost):
            self._write_tables(interim=True)
        interrupt.check()

    def _serve_or_compute(
        self, cell: Cell, stored: CellOutput | None, dataset: Dataset | None, trained: TrainedModel | None
    ) -> None:
        if stored is not None:
            # held as read: making them compact costs more than a warm rerun's budget; a cell
            # computed in this run is held compact (below)
            self.rows[cell.key], self.samples[cell.key] = stored.rows, stored.samples
            self.stats["cells_cached"] += 1
            self.progress(f"{self._counter()} {cell.label}: cached")
            return
        if trained is None or dataset is None:
            self.rows[cell.key] = error_rows(
                cell, sweep(self.matrix, cell.epsilons_255), self.models[cell.model.label]["error"]
            )
            self.stats["cells_failed"] += 1
            self.progress(f"{self._counter()} {cell.label}: FAILED (model failed)")
            return
        start = time.perf_counter()
        try:
            rows, samples, images = compute_cell(
                cell, sweep(self.matrix, cell.epsilons_255), dataset, trained, device=self.torch_device
            )
        except Exception as err:  # noqa: BLE001 - a failed cell is an error row, not a failed run
            self.cell_failed(cell, describe(err))
            return
        self.store.put_cell(cell, CellOutput(rows, samples, images))
        del images
        release_free_memory()
        self.cell_computed(cell, rows, samples, time.perf_counter() - start)

    def cell_failed(self, cell: Cell, message: str) -> None:
        """Record a cell that raised: error rows, never stored."""
        self.rows[cell.key] = error_rows(cell, sweep(self.matrix, cell.epsilons_255), message)
        self.stats["cells_failed"] += 1
        self.progress(f"{self._counter()} {cell.label}: FAILED {message}")

    def cell_computed(self, cell: Cell, rows: pd.DataFrame, samples: pd.DataFrame, seconds: float) -> None:
        """Record a cell computed in this run (already stored) and say what it found."""
        self.rows[cell.key], self.samples[cell.key] = rows, compact_samples(samples)
        self.stats["cells_computed"] += 1
        # numpy, not DataFrame filters: this runs once per cell, thousands of times in a large run
        post, eps = rows["postprocess"].to_numpy(), rows["epsilon_255"].to_numpy()
        robust, clean = rows["robust_accuracy"].to_numpy(), rows["clean_accuracy"].to_numpy()
        floats = np.flatnonzero((rows["quantized"].to_numpy() == "float") & (post == "none"))
        jpeg75 = np.flatnonzero(post == "jpeg75")[-1]
        summary = ", ".join(f"e={eps[i]:g}: {robust[i]:.3f}" for i in floats)
        self.progress(
            f"{self._counter()} {cell.label}: clean {clean[floats[0]]:.3f}, robust {summary}; "
            f"8-bit + JPEG 75 at e={eps[jpeg75]:g}: {robust[jpeg75]:.3f} ({seconds:.1f}s)"
        )

    # -- post-cell stages ----------------------------------------------------------------------
    def _probe(self, plan: Plan) -> None:
        """Probe every trained model for the trust flags (bench/run/probes.py; stored, a few seconds each).

        A model that failed to train is skipped; a probe that fails is a row with an ``error``
        (its flags stay silent) and is not stored.
        """
        start = time.perf_counter()
        rows: list[dict[str, Any]] = []
        loaded: dict[str, tuple[Dataset, TrainedModel]] = {}
        for item in plan.probes:
            interrupt.check()
            job = item.model
            if self.models.get(job.label, {}).get("error"):  # its training failed in this run
                continue
            base = self.probe_base(item)
            numbers = self.store.probe(item.key)
            if numbers is None:
                with self.store.claim("probe", item.key):
                    numbers = self.store.probe(item.key)  # computed by another run while this one waited
                    if numbers is None:
                        try:
                            numbers = self._probe_numbers(item, loaded)
                        except OSError:  # the file system failed (a full disk): the run stops
                            raise
                        except Exception as err:  # noqa: BLE001 - a failed probe leaves its flags silent
                            rows.append({**base, "error": f"{type(err).__name__}: {err}".splitlines()[0]})
                            self.progress(f"probe {job.label} ({item.gradient}): FAILED {rows[-1]['error']}")
                            continue
                        finally:
                            release_free_memory()  # a probe's gradients, as after a cell
                        self.store.put_probe(item.key, numbers)
                self.probe_done(item, numbers)
            rows.append({**base, **numbers})
        self.probes = probe_table(rows)
        self.timings["probes"] = time.perf_counter() - start

    def probe_base(self, item: ProbeJob) -> dict[str, Any]:
        """The identifying columns of a probe's row."""
        job = item.model
        return {
            "task": str(job.task),
            "detector": str(job.detector),
            "defense": str(job.defense),
            "gradient": item.gradient,
            "model": job.key,
            "device": self.device_kind,
            "threads": self.threads,
            "error": "",
        }

    def probe_done(self, item: ProbeJob, numbers: dict[str, Any]) -> None:
        """Say what a probe found."""
        self.progress(
            f"probe {item.model.label} ({item.gradient}): zero gradients {numbers['zero_gradient_share']:.3f}, "
            f"PGD at {UNBOUNDED_EPS * 255:g}/255 robust {numbers['unbounded_robust_accuracy']:.3f}, "
            f"loss not increasing {numbers['loss_not_increasing_share']:.3f}, zero cross-entropy gradients "
            f"{numbers.get('zero_loss_gradient_share', float('nan')):.3f}, noisy gradients "
            f"{numbers.get('noisy_gradient_share', float('nan')):.3f} ({numbers['seconds']:.1f}s)"
        )

    def _probe_numbers(self, job: ProbeJob, loaded: dict[str, tuple[Dataset, TrainedModel]]) -> dict[str, Any]:
        model = job.model
        if model.key not in loaded:
            loaded.clear()  # one model (and its dataset) in memory at a time
            dataset = obtain_dataset(
                model.task, self.source, self.matrix.data, self.matrix.seed, self.store, model.dataset_key
            )
            trained = obtain_model(model, dataset, self.matrix, self.store, device=self.torch_device)
            loaded[model.key] = (dataset, trained)
        dataset, trained = loaded[model.key]
        matrix = self.matrix
        return probe(
            model.defense,
            job.gradient,
            dataset,
            trained.model,
            n_samples=matrix.n_samples,
            seed=matrix.seed,
            device=self.torch_device,
        )

    def _transfer(self, plan: Plan) -> None:
        """Score every kept-images cell on every model of its task (bench/run/transfer.py); an
        error here is reported and leaves the run's cells and exit status alone."""
        try:
            self._transfer_stage(plan)
        except OSError:  # the file system failed (a full disk): the run stops, as for a cell
            raise
        except Exception as err:  # noqa: BLE001 - the cells' tables are already written; the stage is extra
            self.stats["transfer_failed"] = 1
            self.transfer = None
            if self.sink is not None:  # no stale transfer tables of an earlier run beside the new ones
                self.sink.write_transfer(None, [])
            self.warn(f"transfer: FAILED {describe(err)}; transfer.csv and examples.npz are not written")

    def _transfer_stage(self, plan: Plan) -> None:
        start = time.perf_counter()
        kept = ((c, self.store.cell_images(c.key)) for c in plan.transfer_sources)
        sources = [(c, images) for c, images in kept if images is not None]  # a failed cell kept none
        if not sources:
            self.transfer = None
            if self.sink is not None:
                self.sink.write_transfer(None, [])
            return
        rows: list[dict[str, Any]] = []
        examples: list[dict[str, Any]] = []
        computed = cached = 0
        models: dict[str, nn.Module | None] = {}
        for source, images in sources:
            interrupt.check()
            info = self.store.dataset_info(source.model.dataset_key) or {}
            classes = list(info.get("classes", []))
            num_classes = len(classes) or int(images["label"].max()) + 1
            targets = sorted(
                plan.transfer_targets(source.model.task, source.model.training_seed),
                key=lambda j: j.key != source.model_key,
            )
            own: Scores | None = None  # the first target: the source model itself
            for target in targets:
                if target.key not in models:
                    models[target.key] = self._stored_model(target, int(images["x"].shape[1]), num_classes)
                model = models[target.key]
                if model is None:
                    self.progress(f"transfer {source.model.label} -> {target.label}: no trained model; left out")
                    continue
                key = pair_key(source.key, target.key)
                scores = self.store.pair(key)
                if scores is None:
                    with self.store.claim("pair", key):
                        scores = self.store.pair(key)  # scored by another run while this one waited
                        if scores is None:
                            scores = score_images(
                                model, images["x"], images["adv"], images["label"], device=self.torch_device
                            )
                            release_free_memory()
                            self.store.put_pair(key, scores)
                            computed += 1
                        else:
                            cached += 1
                else:
                    cached += 1
                if target.key == source.model_key:
                    own = scores
                if own is None:
                    break
                rows += transfer_rows(source, target, images, own, scores)
            if own is not None:
                examples.append(example_entry(source, classes, images, own))
        columns = [c for c in TRANSFER_COLUMNS if c not in (TRAINING_SEED, DEVICE, THREADS)]
        seeds = {j.key: str(j.training_seed) for j in plan.models}
        frame = pd.DataFrame(rows, columns=columns)
        frame = frame.assign(
            training_seed=frame["target_model"].map(seeds), device=self.device_kind, threads=self.threads
        )
        self.transfer = conform(frame, TRANSFER_COLUMNS)
        if self.sink is not None:
            self.sink.write_transfer(self.transfer, examples)
        self.stats.update({"transfer_pairs_computed": computed, "transfer_pairs_cached": cached})
        self.timings["transfer"] = time.perf_counter() - start
        self.progress(
            f"transfer: {len(sources)} sources x their task's models, {computed} pairs scored, {cached} from cache "
            f"({time.perf_counter() - start:.1f}s) -> transfer.csv, examples.npz"
        )

    def _stored_model(self, job: ModelJob, in_channels: int, num_classes: int) -> nn.Module | None:
        """A target model from the store (None when it is not there: its training failed)."""
        return self.store.load_weights(
            job.key, create_detector(job.detector, in_channels=in_channels, num_classes=num_classes)
        )

    # -- outputs -------------------------------------------------------------------------------
    def tables(self, *, interim: bool = False) -> Tables:
        """The tables of everything finished so far, in the plan's order whatever order the cells
        finished in. With a plan, the frames gathered by earlier refreshes are reused (one
        concatenation per refresh, not one per cell: pandas' concat of thousands of small frames
        costs seconds) and the same rows come out in the same order, whether ``interim`` (a
        refresh while cells still run) or not."""
        plan = self._plan
        models = [j.label for j in plan.models] if plan is not None else list(self.models)
        if plan is not None:
            rows, samples = self._gathered(plan)
        else:
            cells = list(self.rows)
            rows = [self.rows[k] for k in cells if k in self.rows]
            samples = [self.samples[k] for k in cells if k in self.samples]
        return assemble(
            rows,
            samples,
            [self.models[m] for m in models if m in self.models],
            self.probes,
            self.datasets,
            device=self.device_kind,
            threads=self.threads,
            seeds={j.key: j.training_seed for j in plan.models} if plan is not None else None,
        )

    def _gathered(self, plan: Plan) -> tuple[list[pd.DataFrame], list[pd.DataFrame]]:
        """Every finished cell's rows and samples, each as one frame in plan order: the frames
        gathered at the last refresh plus the cells recorded since (every cell is recorded once).
        A cell's per-sample frame, once gathered, leaves ``self.samples``: the per-sample rows
        are most of a run's tables (a few MB per cell), and holding them twice doubled what a
        long run keeps in memory (docs/design.md, Costs). ``self.rows`` keeps every cell's rows
        (small; they count the finished cells)."""
        position = self._positions(plan)
        out: list[list[pd.DataFrame]] = []
        for name, frames in (("rows", self.rows), ("samples", self.samples)):
            done, gathered = self._gather.get(name, (0, None))
            new = list(frames.values())[done:]
            parts = ([gathered] if gathered is not None else []) + new
            if not parts:
                out.append([])
                continue
            frame = (concat_samples(parts) if frames is self.samples else pd.concat(parts)) if new else parts[0]
            places = frame["cell"].map(position).to_numpy()
            if (np.diff(places) < 0).any():  # cells finished out of the plan's order (a serial run's are in it)
                frame = frame.iloc[np.argsort(places, kind="stable")]
            if frames is self.samples:
                frames.clear()  # held by the gathered frame now
            self._gather[name] = (len(frames), frame)
            out.append([frame])
        return out[0], out[1]

    def _positions(self, plan: Plan) -> dict[str, int]:
        if self._position is None:
            self._position = {c.key: i for i, c in enumerate(plan.cells)}
        return self._position

    def _write_tables(self, *, interim: bool = False) -> Tables:
        """The tables of everything finished so far, to the sink. Their cost grows with the cells
        finished, so a refresh while cells run (``interim``) is due ``refresh_seconds`` after the
        last one or ten times the last one's cost, whichever is longer: refreshing takes at most
        a tenth of a run, and a run stays linear in its cells."""
        start = time.perf_counter()
        tables = self.tables(interim=interim)
        if self.sink is not None:
            self.sink.write_tables(tables.table, tables.samples, tables.models, tables.probes)
        release_free_memory()  # the assembly's and the parquet writer's working set, before the next cell
        self.refreshes += 1
        self._refreshed = time.perf_counter()
        self._refresh_cost = self._refreshed - start
        self.timings["tables"] = self.timings.get("tables", 0.0) + self._refresh_cost
        return tables

    def describe_executor(self) -> dict[str, Any]:
        """How the run was carried out (run.json ``executor``; no number depends on it)."""
        return {"kind": self.executor, "workers": 1}

    def run_info(self, tables: Tables) -> dict[str, Any]:
        """The description of the run written beside its tables (run.json)."""
        import torch

        return {
            "profile": self.matrix.profile,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "versions": versions(),
            "host": {
                "platform": platform.platform(),
                "cpu_model": cpu_model(),
                # the vector instructions torch's CPU kernels use: numbers may differ between these
                "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                "cpu_count": os.cpu_count(),
                "torch_threads": self.threads,  # cells, probes and transfer pairs (in their keys)
                "training_threads": TRAINING_THREADS,  # every training (bench/run/training.py)
                "malloc_tuned": tune_malloc(),  # glibc's thresholds set (bench/core/malloc.py): speed only
            },
            "configuration": self.matrix.to_dict(),
            # the file's name only: a local path would leak into committed references
            "matrix": {"file": Path(self.matrix.file).name, "builtin": self.matrix.builtin},
            "attacks_run": self._attacks_run,
            "device": {"requested": self.matrix.device, "used": self.device, "kind": self.device_kind},
            "executor": self.describe_executor(),
            "images": {"source": self.source.label, "files": len(self.source.files), "digest": self.source.digest},
            "datasets": {str(t): self.datasets[str(t)] for t in self.matrix.tasks if str(t) in self.datasets},
            "stats": self.stats,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "flags": flag_counts(tables.table),  # rows raising each trust flag (docs/flags.md)
        }

    def _finish(self) -> RunResult:
        self.timings["total_seconds"] = time.perf_counter() - self._start
        release_free_memory()  # the last stage's working set, before the tables are assembled
        tables = self._write_tables()
        if self.sink is not None:
            self.sink.write_run_info(self.run_info(tables))
        stats: dict[str, Any] = {**self.stats, **self.timings}
        return RunResult(tables.table, tables.samples, tables.models, tables.probes, self.transfer, stats)
