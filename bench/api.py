"""The Python API: run a matrix from a notebook or a script, as the CLI does.

``run`` connects the layers: it plans and executes the matrix (bench/run) with the cache folder
as the store and the results folder (bench/outputs/formats.py) as the sink, then draws the run's
own figures from the folder it wrote (bench/outputs/figures.py). ``run_matrix`` returns just the
tidy table.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.core.cache import check_writable
from bench.inputs.matrix import Matrix, load_matrix
from bench.inputs.photos import builtin_source, folder_source
from bench.outputs.figures import RUN_FIGURES, FigureOutput, make_figures
from bench.outputs.formats import ResultsFolder, results_folder
from bench.run.execute import Progress, Runner, RunResult
from bench.run.plan import make_plan
from bench.run.store import Store


def prepare(
    matrix: Matrix,
    *,
    images: str | Path | None = None,
    results_dir: str | Path = "results",
    cache_dir: str | Path | None = None,
    progress: Progress | None = None,
    warn: Progress | None = None,
) -> tuple[Runner, ResultsFolder]:
    """A runner for ``matrix`` and the results folder it writes (``RESULTS/<profile>``; on your own
    photographs ``RESULTS/<profile>-<folder>``); the cache defaults to ``RESULTS/.cache``.

    Before anything is written: BenchError when the results or the cache folder cannot be created
    or written; ``warn`` receives a line when the free space looks short, and one line for every
    damaged cache entry the run moves aside.
    """
    source = folder_source(images) if images is not None else builtin_source()
    folder = ResultsFolder(results_folder(results_dir, matrix.profile, None if images is None else source.label))
    cache = Path(cache_dir) if cache_dir is not None else Path(results_dir) / ".cache"
    free = min(check_writable(folder.folder, "--results"), check_writable(cache, "--cache-dir"))
    runner = Runner(matrix, store=Store(cache, warn=warn), source=source, sink=folder, progress=progress, warn=warn)
    needed = make_plan(matrix, source).disk_bytes()
    if warn is not None and needed > free:
        warn(
            f"warning: {free / 1e6:,.0f} MB free where the results and the cache go; this matrix may write up to "
            f"{needed / 1e6:,.0f} MB (a rough estimate): a full disk stops the run, keeping every finished cell"
        )
    return runner, folder


def draw_run_figures(folder: str | Path) -> FigureOutput:
    """The figures a run keeps beside its tables (``curves``, ``min-norm-curves``)."""
    return make_figures(folder, out_dir=folder, only=RUN_FIGURES)


def run(
    matrix: Matrix | str | Path,
    *,
    images: str | Path | None = None,
    results_dir: str | Path = "results",
    cache_dir: str | Path | None = None,
    progress: Progress | None = None,
    warn: Progress | None = None,
) -> RunResult:
    """Run a matrix (a Matrix or a TOML path) into its results folder and return what it produced
    (``warn``: as for :func:`prepare`)."""
    if not isinstance(matrix, Matrix):
        matrix = load_matrix(matrix)
    runner, folder = prepare(
        matrix, images=images, results_dir=results_dir, cache_dir=cache_dir, progress=progress, warn=warn
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
