"""A Ctrl-C at any moment of a Dask run keeps every cell a worker stored in the tables written on
the way out.

The slow test in test_distributed.py sends a real SIGINT to a `--workers 2` run; when it lands is
up to the machine, and CI once caught the client just as it read the first finished cell back (the
cell was taken off the pending list, the interruption came before its rows were recorded, and the
run wrote no tables). Here the interruption is placed exactly there, on a cluster inside this
process (its workers are threads, so the instant detector and attack registered here exist on
them): the test fails if the cell being recorded is lost.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from bench.core import interrupt
from bench.inputs.matrix import parse_matrix
from bench.outputs.formats import ResultsFolder
from bench.run.distributed import Cluster, DaskRunner
from bench.run.execute import Runner
from bench.run.store import Store
from tests import instant
from tests.test_bookkeeping import instant_doc


@pytest.fixture
def address() -> Iterator[str]:
    """A scheduler and one one-thread worker inside this process."""
    from distributed import LocalCluster

    with LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        yield str(cluster.scheduler_address)


def test_an_interruption_while_a_cell_is_recorded_keeps_it(address: str, tmp_path: Path) -> None:
    recorded: list[str] = []
    with instant.detector_registered(), instant.registered():
        runner = DaskRunner(
            parse_matrix(instant_doc(3)),
            cluster=Cluster(address=address),
            threads=1,
            store=Store(tmp_path / "cache"),
            sink=ResultsFolder(tmp_path / "out"),
        )

        def interrupted(cell: Any, *args: Any, **kwargs: Any) -> None:
            recorded.append(cell.key)  # the client read the cell back; Ctrl-C before its rows are kept
            raise KeyboardInterrupt

        runner.cell_computed = interrupted  # type: ignore[method-assign]
        with pytest.raises(KeyboardInterrupt):
            runner.run()
    assert recorded, "the run was not interrupted while recording a cell"
    table = pd.read_parquet(tmp_path / "out" / "matrix.parquet")  # written on the way out
    assert recorded[0] in set(table["cell"]), "the cell being recorded was lost"


class _Swallowing:
    """What Dask's garbage-collector callback did to a Ctrl-C in CI: it arrives while the
    interpreter runs a finaliser, is printed as "Exception ignored" and is lost."""

    def __del__(self) -> None:
        signal.raise_signal(signal.SIGINT)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the swallowing, on purpose
@pytest.mark.parametrize("executor", ["serial", "dask"])
def test_a_ctrl_c_python_swallows_still_ends_the_run(executor: str, address: str, tmp_path: Path) -> None:
    recorded: list[str] = []
    with instant.detector_registered(), instant.registered(), interrupt.handling():
        options: dict[str, Any] = {"store": Store(tmp_path / "cache"), "sink": ResultsFolder(tmp_path / "out")}
        matrix = parse_matrix(instant_doc(3))
        runner = (
            Runner(matrix, **options)
            if executor == "serial"
            else DaskRunner(matrix, cluster=Cluster(address=address), threads=1, **options)
        )
        record = runner.cell_computed

        def swallowed(cell: Any, *args: Any, **kwargs: Any) -> None:
            recorded.append(cell.key)
            if len(recorded) == 1:
                _Swallowing()  # the KeyboardInterrupt dies in the finaliser; the flag is what remains
            record(cell, *args, **kwargs)

        runner.cell_computed = swallowed  # type: ignore[method-assign]
        with pytest.raises(KeyboardInterrupt):
            runner.run()
        cells = len(runner.plan().cells)
    assert len(recorded) < cells, f"the run went on to all {cells} cells after the Ctrl-C"
    table = pd.read_parquet(tmp_path / "out" / "matrix.parquet")
    assert recorded[0] in set(table["cell"]), "the finished cell was lost"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the swallowing, on purpose
def test_a_ctrl_c_swallowed_after_the_last_check_still_exits_130(monkeypatch: pytest.MonkeyPatch) -> None:
    """Swallowed while the tables are written or the cluster closes: the work is saved, and the
    exit status still says the run was interrupted."""
    import argparse

    from bench.cli import running

    def finished(args: argparse.Namespace, matrix: Any) -> int:
        _Swallowing()
        return 0

    monkeypatch.setattr(running, "_matrix", lambda args: None)
    monkeypatch.setattr(running, "_run_or_cost", finished)
    assert running._run(argparse.Namespace()) == 130
    monkeypatch.setattr(running, "_run_or_cost", lambda args, matrix: 0)
    assert running._run(argparse.Namespace()) == 0  # the request does not outlive its run
