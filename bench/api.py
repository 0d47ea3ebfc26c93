"""The Python API: run a matrix from a notebook or a script, as the CLI does.

``run`` connects the layers: it plans and executes the matrix (bench/run) with the cache folder
as the store and the results folder (bench/outputs/formats.py) as the sink, then draws the run's
own figures from the folder it wrote (bench/outputs/figures.py). ``run_matrix`` returns just the
tidy table.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pandas as pd

from bench.core.cache import check_writable
from bench.core.devices import device_kind, parse_device, resolve_device
from bench.core.errors import BenchError
from bench.inputs.matrix import Matrix, load_matrix
from bench.inputs.photos import builtin_source, folder_source
from bench.outputs.figures import FigureOutput, make_run_figures
from bench.outputs.formats import ResultsFolder, results_folder
from bench.run.distributed import Cluster, DaskRunner, cluster_facts
from bench.run.execute import Progress, Runner, RunResult, Update
from bench.run.store import Store

MAX_WORKERS = 1024


def cpu_cores() -> int:
    """The CPUs this process may run on (a container's or a batch job's share, not the machine's)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def executor(
    *, workers: int | None = None, scheduler: str | None = None, scheduler_file: str | Path | None = None
) -> Cluster | None:
    """The executor chosen by ``workers`` / ``scheduler`` / ``scheduler_file`` (None: serial, in
    this process); BenchError (one line) on a bad choice, before anything starts."""
    chosen = [
        name
        for name, v in (("--workers", workers), ("--scheduler", scheduler), ("--scheduler-file", scheduler_file))
        if v is not None
    ]
    if len(chosen) > 1:
        raise BenchError(
            f"{' and '.join(chosen)}: choose one executor; allowed: --workers N, --scheduler ADDRESS or --scheduler-file FILE"
        )
    if workers is not None:
        if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= MAX_WORKERS:
            raise BenchError(f"--workers {workers}: not allowed; a number of worker processes from 1 to {MAX_WORKERS}")
        return Cluster(workers=workers, cpus=cpu_cores())
    if scheduler is not None:
        if not scheduler.strip():
            raise BenchError("--scheduler: empty; allowed: a scheduler address such as tcp://10.0.0.5:8786")
        return Cluster(address=scheduler)
    if scheduler_file is not None:
        if not Path(scheduler_file).is_file():
            raise BenchError(
                f"--scheduler-file {scheduler_file}: no such file; allowed: the JSON file `dask scheduler --scheduler-file` writes"
            )
        return Cluster(scheduler_file=str(scheduler_file))
    return None


def prepare(
    matrix: Matrix,
    *,
    images: str | Path | None = None,
    results_dir: str | Path = "results",
    cache_dir: str | Path | None = None,
    progress: Progress | None = None,
    warn: Progress | None = None,
    device: str | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    scheduler_file: str | Path | None = None,
    update: Update | None = None,
) -> tuple[Runner, ResultsFolder]:
    """A runner for ``matrix`` and the results folder it writes (``RESULTS/<profile>``; on your own
    photographs ``RESULTS/<profile>-<folder>``); the cache defaults to ``RESULTS/.cache``.

    ``device`` ("auto", "cpu", "cuda", "cuda:N"; default: the matrix's ``device`` key) is where
    every stage runs. The executor: serial in this process (default), an embedded Dask cluster of
    ``workers`` processes (each task with ``cores // workers`` torch threads), or an existing
    cluster (``scheduler`` address or ``scheduler_file``); ``update`` receives the run's counts.

    Before anything is written: BenchError when the executor or device is not allowed (``--device
    cuda`` without CUDA), or when the results or the cache folder cannot be created or written;
    ``warn`` receives a line when the free space looks short, and one line for every damaged cache
    entry the run moves aside.
    """
    cluster = executor(workers=workers, scheduler=scheduler, scheduler_file=scheduler_file)
    if device is not None:
        matrix = dataclasses.replace(matrix, device=parse_device(device, "--device"))
    source = folder_source(images) if images is not None else builtin_source()
    folder = ResultsFolder(results_folder(results_dir, matrix.profile, None if images is None else source.label))
    cache = Path(cache_dir) if cache_dir is not None else Path(results_dir) / ".cache"
    threads: int | None = None  # a serial run: this process's torch threads
    if cluster is not None and cluster.workers:
        threads = max(1, cpu_cores() // cluster.workers)  # N workers never oversubscribe the machine
    if cluster is None or cluster.embedded:  # the workers are on this machine: resolved here
        where = "--device" if device is not None else f"{matrix.file or 'matrix'}: device"
        used = str(resolve_device(matrix.device, where))
        if cluster is not None and matrix.device in ("auto", "cuda") and device_kind(used) == "cuda":
            used = "cuda"  # each worker takes a GPU of its own (bench/run/distributed.py, _worker_device)
    else:  # the workers may have GPUs this machine lacks: asked of one of them
        if progress is not None:
            progress(f"asking a worker of the {cluster.describe()} which device {matrix.device!r} is there")
        kind, threads = cluster_facts(cluster, matrix.device)
        used = kind if matrix.device == "auto" else matrix.device
    free = min(check_writable(folder.folder, "--results"), check_writable(cache, "--cache-dir"))
    common = {
        "store": Store(cache, warn=warn),
        "source": source,
        "sink": folder,
        "progress": progress,
        "warn": warn,
        "device": used,
        "update": update,
    }
    runner: Runner
    if cluster is None:
        runner = Runner(matrix, threads=threads, **common)  # type: ignore[arg-type]
    else:
        assert threads is not None
        runner = DaskRunner(matrix, cluster=cluster, threads=threads, **common)
    needed = runner.plan().disk_bytes()
    if warn is not None and needed > free:
        warn(
            f"warning: {free / 1e6:,.0f} MB free where the results and the cache go; this matrix may write up to "
            f"{needed / 1e6:,.0f} MB (a rough estimate): a full disk stops the run, keeping every finished cell"
        )
    return runner, folder


def draw_run_figures(folder: str | Path) -> FigureOutput | None:
    """The figures a run keeps beside its tables (``curves``, ``min-norm-curves``); None when they
    are there already, drawn from the same tables by the same code."""
    return make_run_figures(folder)


def run(
    matrix: Matrix | str | Path,
    *,
    images: str | Path | None = None,
    results_dir: str | Path = "results",
    cache_dir: str | Path | None = None,
    progress: Progress | None = None,
    warn: Progress | None = None,
    device: str | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    scheduler_file: str | Path | None = None,
) -> RunResult:
    """Run a matrix (a Matrix or a TOML path) into its results folder and return what it produced
    (``warn``, the device and the executor: as for :func:`prepare`)."""
    if not isinstance(matrix, Matrix):
        matrix = load_matrix(matrix)
    runner, folder = prepare(
        matrix,
        images=images,
        results_dir=results_dir,
        cache_dir=cache_dir,
        progress=progress,
        warn=warn,
        device=device,
        workers=workers,
        scheduler=scheduler,
        scheduler_file=scheduler_file,
    )
    result = runner.run()
    draw_run_figures(folder.folder)
    return result


def run_matrix(
    matrix: Matrix | str | Path,
    *,
    images: str | Path | None = None,
    results_dir: str | Path = "results",
    cache_dir: str | Path | None = None,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Run a matrix and return its tidy table (one row per cell x epsilon x variant, plus ensemble rows)."""
    return run(matrix, images=images, results_dir=results_dir, cache_dir=cache_dir, progress=progress).table
