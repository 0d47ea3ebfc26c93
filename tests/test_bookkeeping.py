"""Bookkeeping that grows linearly: the runner writes every cell once and refreshes the tables at
most every ``refresh_seconds`` (and once at the end), not after every cell.

The quick test counts the refreshes (a count, not a time). ``bookkeeping_figures`` measures the
time the runner spends per cell outside the cell computation at two matrix sizes; the slow test
prints it (nothing asserts a wall-clock time), and `python tests/test_bookkeeping.py 500 5000`
prints the same figures by hand.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from bench.inputs.matrix import parse_matrix
from bench.outputs.formats import ResultsFolder
from bench.run import execute
from bench.run.execute import Runner
from bench.run.store import Store
from tests import instant
from tests.tiny import tiny_doc


def instant_doc(cells: int) -> dict[str, Any]:
    """A matrix of ``cells`` instant attacks on one instant detector (trained one short epoch)."""
    return tiny_doc(
        profile=f"instant{cells}",
        n_samples=4,
        detectors=[instant.DETECTOR],
        attacks=[f"{instant.NAME}[k={k}]" for k in range(cells)],
        epsilons_255=[1],
        training={"epochs": 1, "max_train_patches": 64},
    )


def run_instant(cells: int, folder: Path, *, refresh_seconds: float = 5.0) -> dict[str, Any]:
    """Run the instant matrix cold; the runner, its tables and the seconds spent per cell outside
    the cell computation (the run's cells stage minus training and ``compute_cell``)."""
    inside = [0.0]
    compute = execute.compute_cell

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return compute(*args, **kwargs)
        finally:
            inside[0] += time.perf_counter() - start

    with instant.detector_registered(), instant.registered():
        matrix = parse_matrix(instant_doc(cells))
        runner = Runner(
            matrix,
            store=Store(folder / "cache"),
            sink=ResultsFolder(folder / "out"),
            refresh_seconds=refresh_seconds,
        )
        execute.compute_cell = timed
        try:
            start = time.perf_counter()
            result = runner.run()
            total = time.perf_counter() - start
        finally:
            execute.compute_cell = compute
    train = float(result.models["train_seconds"].sum())
    probes = runner.timings.get("probes", 0.0)
    outside = total - train - probes - inside[0]
    return {
        "runner": runner,
        "result": result,
        "cells": cells,
        "total_seconds": total,
        "compute_seconds": inside[0],
        "outside_ms_per_cell": 1000 * outside / cells,
    }


def test_tables_are_refreshed_when_due_not_after_every_cell(tmp_path: Path) -> None:
    never = run_instant(40, tmp_path / "never", refresh_seconds=float("inf"))
    always = run_instant(40, tmp_path / "always", refresh_seconds=0.0)
    assert never["runner"].refreshes == 1  # the end of the run only
    # due after every cell, yet at most every 10x the last refresh's cost: more than one
    assert 1 < always["runner"].refreshes <= 40 + 1
    assert never["result"].stats["cells_computed"] == 40
    written = pd.read_parquet(tmp_path / "never" / "out" / "matrix.parquet")
    assert len(written) == len(never["result"].table)
    runner = always["runner"]  # the interim tables (gathered refresh by refresh) are the final ones
    interim, final = runner.tables(interim=True), runner.tables()
    for name in ("table", "samples", "models"):
        pd.testing.assert_frame_equal(getattr(interim, name), getattr(final, name), check_exact=True)
    a, b = never["result"].table, always["result"].table
    timings = ["seconds", "train_seconds"]
    pd.testing.assert_frame_equal(a.drop(columns=timings), b.drop(columns=timings))
    # gathered once at the end or refresh by refresh: the same per-sample rows in the same order,
    # and a cell's per-sample frame, once gathered, is held only in the gathered frame
    pd.testing.assert_frame_equal(never["result"].samples, always["result"].samples, check_exact=True)
    assert not never["runner"].samples and not runner.samples


@pytest.mark.slow
def test_bookkeeping_per_cell_figures(tmp_path: Path) -> None:
    """Prints ms per cell outside the cell computation at 500 and 5,000 cells (no time asserted)."""
    small = run_instant(500, tmp_path / "small")
    large = run_instant(5000, tmp_path / "large")
    assert large["result"].stats["cells_computed"] == 5000
    assert large["runner"].refreshes < 5000 / 10  # a few refreshes a run, not one per cell
    ratio = large["outside_ms_per_cell"] / small["outside_ms_per_cell"]
    print(
        f"\nbookkeeping: {small['outside_ms_per_cell']:.2f} ms/cell at 500 cells, "
        f"{large['outside_ms_per_cell']:.2f} ms/cell at 5000 (ratio {ratio:.2f})"
    )


if __name__ == "__main__":  # python tests/test_bookkeeping.py 500 5000
    import tempfile

    for n in map(int, sys.argv[1:] or ["500", "5000"]):
        with tempfile.TemporaryDirectory() as tmp:
            out = run_instant(n, Path(tmp))
            print(
                f"{n} cells: {out['outside_ms_per_cell']:.2f} ms per cell outside the cell computation "
                f"(cell computation {1000 * out['compute_seconds'] / n:.2f} ms per cell, total {out['total_seconds']:.1f}s, "
                f"{out['runner'].refreshes} table refreshes)",
                flush=True,
            )
