"""The Python API: run a matrix from a notebook or a script, as the CLI does (docs/notebook.md).

``load_matrix`` reads a matrix file or a built-in profile; ``run`` connects the layers: it plans
and executes the matrix (bench/run) with the cache folder as the store and the results folder
(bench/outputs/formats.py) as the sink, then draws the run's own figures from the folder it wrote
(bench/outputs/figures.py); ``run_matrix`` returns just the tidy table; ``read_results`` reads a
finished results folder back as tables; ``list_entries`` lists what a matrix can name.

Errors are :class:`BenchError`, one line naming the Python argument that is wrong (``matrix``,
``workers``...). The CLI calls the same functions with its flags (``flags``, a map from argument
to flag), so its messages name ``--matrix``, ``--workers``... instead.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bench.attacks import ATTACKS
from bench.core.cache import check_writable
from bench.core.devices import device_kind, parse_device, resolve_device
from bench.core.errors import BenchError, did_you_mean
from bench.core.registry import Registry, Spec
from bench.core.schema import headline as headline_rows
from bench.inputs.matrix import Matrix, builtin_matrix_path, builtin_profiles
from bench.inputs.matrix import load_matrix as read_matrix_file
from bench.inputs.photos import builtin_source, folder_source
from bench.outputs.figures import FigureOutput, make_run_figures
from bench.outputs.formats import ResultsFolder, load_results, results_folder
from bench.run.distributed import Cluster, DaskRunner, cluster_facts
from bench.run.execute import Progress, Runner, RunResult, Update
from bench.run.store import Store
from bench.tasks import TASKS
from defenses import DEFENSES
from detectors import DETECTORS

MAX_WORKERS = 1024


def cpu_cores() -> int:
    """The CPUs this process may run on (a container's or a batch job's share, not the machine's)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _name(argument: str, flags: Mapping[str, str] | None) -> str:
    """How an error names an option: the Python argument, or the CLI's flag for it."""
    return argument if flags is None else flags[argument]


def _given(argument: str, flags: Mapping[str, str] | None, value: Any) -> str:
    """An option with the value given: ``workers=0`` (Python) or ``--workers 0`` (the CLI)."""
    if flags is None:
        return f"{argument}={str(value) if isinstance(value, Path) else value!r}"
    return f"{flags[argument]} {value}"


def _form(argument: str, flags: Mapping[str, str] | None, placeholder: str) -> str:
    """An option's form in an "allowed:" list: ``workers=N`` or ``--workers N``."""
    return f"{argument}={placeholder}" if flags is None else f"{flags[argument]} {placeholder}"


def load_matrix(matrix: str | Path, *, profile: str | None = None, train_only: bool = False) -> Matrix:
    """A validated matrix from a TOML file or a built-in profile's name (``"smoke"``; see
    ``list_entries("profiles")``). An existing file wins over a profile of the same name.

    ``profile`` renames the run's output (``RESULTS/<profile>``); ``train_only`` (the zoo) makes
    ``attacks`` and ``epsilons_255`` optional. BenchError (one line) when ``matrix`` is neither a
    readable file nor a profile, or when the matrix does not validate.
    """
    path = Path(matrix)
    where = f"matrix {str(matrix)!r}"
    if path.is_file():
        return read_matrix_file(path, profile, train_only=train_only, label=where)
    if path.exists():
        raise BenchError(f"{where}: not a file; give a matrix file (TOML) or a built-in profile's name")
    profiles = builtin_profiles()
    if isinstance(matrix, str) and matrix in profiles:
        return read_matrix_file(builtin_matrix_path(matrix), profile, train_only=train_only, label=where)
    named = f" or built-in profile; profiles: {', '.join(profiles)}" if isinstance(matrix, str) else ""
    raise BenchError(f"{where}: no such file{named}{did_you_mean(str(matrix), profiles) if named else ''}")


def executor(
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    scheduler_file: str | Path | None = None,
    flags: Mapping[str, str] | None = None,
) -> Cluster | None:
    """The executor chosen by ``workers`` / ``scheduler`` / ``scheduler_file`` (None: serial, in
    this process); BenchError (one line) on a bad choice, before anything starts. ``flags``: the
    CLI's flag for each argument, for its messages (None: the messages name the arguments)."""
    options = (("workers", workers), ("scheduler", scheduler), ("scheduler_file", scheduler_file))
    chosen = [_name(argument, flags) for argument, value in options if value is not None]
    if len(chosen) > 1:
        forms = [
            _form("workers", flags, "N"),
            _form("scheduler", flags, "ADDRESS"),
            _form("scheduler_file", flags, "FILE"),
        ]
        raise BenchError(f"{' and '.join(chosen)}: choose one executor; allowed: {forms[0]}, {forms[1]} or {forms[2]}")
    if workers is not None:
        if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= MAX_WORKERS:
            raise BenchError(
                f"{_given('workers', flags, workers)}: not allowed; a number of worker processes from 1 to {MAX_WORKERS}"
            )
        return Cluster(workers=workers, cpus=cpu_cores())
    if scheduler is not None:
        if not scheduler.strip():
            raise BenchError(
                f"{_name('scheduler', flags)}: empty; allowed: a scheduler address such as tcp://10.0.0.5:8786"
            )
        return Cluster(address=scheduler)
    if scheduler_file is not None:
        if not Path(scheduler_file).is_file():
            raise BenchError(
                f"{_given('scheduler_file', flags, scheduler_file)}: no such file; allowed: the JSON file "
                "`dask scheduler --scheduler-file` writes"
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
    flags: Mapping[str, str] | None = None,
) -> tuple[Runner, ResultsFolder]:
    """A runner for ``matrix`` and the results folder it writes (``RESULTS/<profile>``; on your own
    photographs ``RESULTS/<profile>-<folder>``); the cache defaults to ``RESULTS/.cache``.

    ``device`` ("auto", "cpu", "cuda", "cuda:N"; default: the matrix's ``device`` key) is where
    every stage runs. The executor: serial in this process (default), an embedded Dask cluster of
    ``workers`` processes (each task with ``cores // workers`` torch threads), or an existing
    cluster (``scheduler`` address or ``scheduler_file``); ``update`` receives the run's counts.

    Before anything is written: BenchError when the executor or device is not allowed (``device=
    "cuda"`` without CUDA), when ``images`` is not a folder of readable images, or when the results
    or the cache folder cannot be created or written; ``warn`` receives a line when the free space
    looks short, and one line for every damaged cache entry the run moves aside. The errors name
    the arguments, or with ``flags`` (the CLI's flag for each argument) the flags.
    """
    cluster = executor(workers=workers, scheduler=scheduler, scheduler_file=scheduler_file, flags=flags)
    if device is not None:
        matrix = dataclasses.replace(matrix, device=parse_device(device, _name("device", flags)))
    source = folder_source(images, _name("images", flags)) if images is not None else builtin_source()
    folder = ResultsFolder(results_folder(results_dir, matrix.profile, None if images is None else source.label))
    cache = Path(cache_dir) if cache_dir is not None else Path(results_dir) / ".cache"
    threads: int | None = None  # a serial run: this process's torch threads
    if cluster is not None and cluster.workers:
        threads = max(1, cpu_cores() // cluster.workers)  # N workers never oversubscribe the machine
    if cluster is None or cluster.embedded:  # the workers are on this machine: resolved here
        where = _name("device", flags) if device is not None else f"{matrix.file or 'matrix'}: device"
        used = str(resolve_device(matrix.device, where))
        if cluster is not None and matrix.device in ("auto", "cuda") and device_kind(used) == "cuda":
            used = "cuda"  # each worker takes a GPU of its own (bench/run/distributed.py, _worker_device)
    else:  # the workers may have GPUs this machine lacks: asked of one of them
        if progress is not None:
            progress(f"asking a worker of the {cluster.describe()} which device {matrix.device!r} is there")
        kind, threads = cluster_facts(cluster, matrix.device)
        used = kind if matrix.device == "auto" else matrix.device
    free = min(
        check_writable(folder.folder, _name("results_dir", flags)), check_writable(cache, _name("cache_dir", flags))
    )
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
    """Run a matrix (a Matrix, a TOML path or a built-in profile's name: :func:`load_matrix`) into
    its results folder and return what it produced (``warn``, the device and the executor: as for
    :func:`prepare`)."""
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
    """Run a matrix (as :func:`run`) and return its tidy table: one row per cell x epsilon x
    variant, plus the ensemble rows (columns: bench/core/schema.py, docs/usage.md)."""
    return run(matrix, images=images, results_dir=results_dir, cache_dir=cache_dir, progress=progress).table


@dataclass(frozen=True)
class RunTables:
    """A finished results folder read back as tables (:func:`read_results`); columns in
    bench/core/schema.py and docs/usage.md. A table the folder lacks is None."""

    folder: Path
    matrix: pd.DataFrame  # one row per cell x epsilon x variant, plus the ensemble rows (empty for a zoo)
    samples: pd.DataFrame | None  # one row per cell x epsilon x variant x attacked sample
    models: pd.DataFrame | None  # one row per trained model
    transfer: pd.DataFrame | None  # the kept cells' 8-bit images scored on every model of their task
    run: dict[str, Any] = field(default_factory=dict)  # run.json: configuration, versions, host, statistics

    @property
    def headline(self) -> pd.DataFrame:
        """The matrix rows the figures and pages show: those across the training seeds where the
        run has several, else every row."""
        return headline_rows(self.matrix)


def read_results(folder: str | Path) -> RunTables:
    """Read a results folder of ``run_matrix`` (or of the CLI's ``run`` / ``zoo``) back as tables,
    every file checked as the CLI's readers check it; nothing is run. BenchError (one line) when
    ``folder`` is not a results folder or a file in it is damaged."""
    path = Path(folder)
    where = f"folder {str(folder)!r}"
    if not path.is_dir():
        raise BenchError(f"{where}: no such results folder; run_matrix writes RESULTS/<profile>")
    if not (path / "matrix.parquet").is_file() and not (path / "models.csv").is_file():
        raise BenchError(f"{where}: not a results folder; it has neither matrix.parquet nor models.csv")
    results = load_results(path, require_matrix=False)
    return RunTables(
        folder=path,
        matrix=results.table,
        samples=results.read_samples(),
        models=results.models,
        transfer=results.transfer,
        run=results.run,
    )


def _with_defaults(registry: Registry[Any], name: str) -> str:
    """An entry's canonical name with every parameter at its default (as ``registry.resolve(name)``
    gives it, without refusing an entry whose required parameter has an empty default)."""
    params = sorted(registry.entry(name).params, key=lambda p: p.key)
    return str(Spec(registry.family, name, tuple((p.key, p.default) for p in params)))


def _families() -> dict[str, Registry[Any]]:
    return {"tasks": TASKS, "detectors": DETECTORS, "defenses": DEFENSES, "attacks": ATTACKS}


def list_entries(family: str | None = None, pattern: str = "*") -> pd.DataFrame:
    """What a matrix can name: one row per registered entry (``tasks``, ``detectors``,
    ``defenses``, ``attacks``) and per built-in matrix (``profiles``), or those of one ``family``
    whose name matches the glob ``pattern``. Columns: ``family``, ``name``, ``canonical`` (the
    name with every parameter at its default: what the tables show) and ``description``."""
    families = [*_families(), "profiles"]
    if family is not None and family not in families:
        raise BenchError(
            f"family {family!r}: not allowed; allowed: {', '.join(families)}{did_you_mean(str(family), families)}"
        )
    rows = [
        (name, entry, _with_defaults(registry, entry), registry.entry(entry).info.description)
        for name, registry in _families().items()
        if family in (None, name)
        for entry in registry.names(pattern)
    ]
    if family in (None, "profiles"):
        rows += [
            ("profiles", profile, profile, read_matrix_file(builtin_matrix_path(profile), train_only=True).description)
            for profile in builtin_profiles()
            if fnmatch.fnmatchcase(profile, pattern)
        ]
    return pd.DataFrame(rows, columns=["family", "name", "canonical", "description"])
