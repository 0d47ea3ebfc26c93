"""glibc's allocator thresholds (bench/core/malloc.py): set once per process, left alone where the
environment chose, and recorded in run.json. Speed only: the tables of a run do not depend on it
(tests/test_distributed.py compares runs whose processes set them at different moments)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROBE = "from bench.core.malloc import tune_malloc; print(tune_malloc(), tune_malloc())"

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")


def _run(env: dict[str, str]) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "LD_PRELOAD"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=clean | env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_set_once_per_process() -> None:
    assert _run({}) == "True True"


@pytest.mark.parametrize("name", ["MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_"])
def test_left_alone_where_the_environment_chose(name: str) -> None:
    assert _run({name: "65536"}) == "False False"


def test_run_json_records_it(smoke) -> None:
    import json

    from bench.core.malloc import tune_malloc

    host = json.loads((smoke.results_dir / "smoke" / "run.json").read_text())["host"]
    assert host["malloc_tuned"] is tune_malloc()  # this process ran the smoke run
