"""Choosing the executor and the device: a bad choice is one line and exit 2, before any work."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.api import cpu_cores, executor
from bench.cli import main
from bench.core.errors import BenchError
from bench.run.distributed import Cluster


def test_bad_executor_and_device_choices_are_one_line_before_any_work(tmp_path: Path, capsys) -> None:
    out = tmp_path / "results"
    cases = {
        ("--workers", "0"): "--workers",
        ("--workers", "two"): "--workers",
        ("--workers", "2", "--scheduler", "tcp://127.0.0.1:1"): "choose one executor",
        ("--scheduler-file", str(tmp_path / "missing.json")): "--scheduler-file",
        ("--device", "gpu"): "--device gpu",
    }
    import torch

    if not torch.cuda.is_available():
        cases[("--device", "cuda")] = "--device cuda"
    for args, says in cases.items():
        status = main(["run", "--profile", "smoke", "--results", str(out), *args])
        err = capsys.readouterr().err.strip()
        assert status == 2, (args, err)
        assert says in err and len(err.splitlines()) == 1, (args, err)
        assert not out.exists(), args


def test_executor_choices() -> None:
    assert executor() is None  # serial
    assert executor(workers=3) == Cluster(workers=3, cpus=cpu_cores())
    assert executor(scheduler="tcp://10.0.0.5:8786") == Cluster(address="tcp://10.0.0.5:8786")
    for bad in ({"workers": 0}, {"workers": True}, {"scheduler": " "}, {"workers": 2, "scheduler": "tcp://x:1"}):
        with pytest.raises(BenchError):
            executor(**bad)  # type: ignore[arg-type]


def test_cells_longest_first_and_after_every_model() -> None:
    """A Dask run starts the cells whose attacks take longest first (black boxes, then iterative
    and minimum-norm attacks, then single steps and the noise control), all after the models."""
    from bench.inputs.matrix import load_matrix
    from bench.inputs.photos import builtin_source
    from bench.run.distributed import PRIORITY, cell_priority
    from bench.run.plan import make_plan

    plan = make_plan(load_matrix(Path("bench/inputs/matrices/default.toml")), builtin_source(), threads=1)
    rank = {str(c.runs).split("[")[0]: cell_priority(c) for c in plan.cells}
    assert rank["art.square"] == rank["art.hopskipjump"] == rank["foolbox.boundary"]
    assert rank["art.square"] > rank["art.pgd"] == rank["foolbox.fmn-l2"] == rank["art.deepfool"]
    assert rank["art.pgd"] > rank["art.fgsm"] == rank["foolbox.fgsm"] > rank["foolbox.gaussian-noise"]
    assert max(rank.values()) < PRIORITY["model"] and min(rank.values()) >= PRIORITY["cell"] > PRIORITY["probe"]
