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
