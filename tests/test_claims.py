"""Claims: one process computes an entry while others wait or do other work; a claim left by a
killed process is free at once; two runs on one cache share the work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from bench.core.claims import Claim
from tests.tiny import TINY_TOML

REPO = Path(__file__).parents[1]


def test_a_claim_is_exclusive_and_names_its_owner(tmp_path: Path) -> None:
    first, second = Claim(tmp_path, "model-k"), Claim(tmp_path, "model-k")
    assert first.acquire(wait=False)
    assert not second.acquire(wait=False)
    assert f"pid {os.getpid()}" in second.owner()
    first.release()
    assert not (tmp_path / "model-k.claim").exists()  # released claims leave no file
    assert second.acquire(wait=False)
    second.release()
    assert Claim(tmp_path, "other").acquire(wait=False)  # claims on other entries are independent


def test_a_claim_of_a_killed_process_is_taken_over_at_once(tmp_path: Path) -> None:
    code = (
        "import sys, time; from pathlib import Path; from bench.core.claims import Claim; "
        f"c = Claim(Path({str(tmp_path)!r}), 'cell-k'); c.acquire(wait=False); print('held', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        waiting = Claim(tmp_path, "cell-k")
        assert not waiting.acquire(wait=False)
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        start = time.monotonic()
        assert waiting.acquire(wait=True)  # the kernel dropped the dead holder's lock
        assert time.monotonic() - start < 5
        assert str(os.getpid()) in (tmp_path / "cell-k.claim").read_text()
    finally:
        holder.kill()


@pytest.mark.slow
def test_two_runs_on_one_cache_compute_everything_once(tmp_path: Path) -> None:
    matrix = tmp_path / "tiny.toml"
    matrix.write_text(
        TINY_TOML.replace('attacks = ["foolbox.fgsm"]', 'attacks = ["foolbox.fgsm", "art.fgsm", "foolbox.pgd"]')
    )
    cache = tmp_path / "cache"
    code = (
        "import json, sys; from bench.api import run; "
        "r = run(sys.argv[1], results_dir=sys.argv[2], cache_dir=sys.argv[3]); "
        "print(json.dumps({k: v for k, v in r.stats.items() if isinstance(v, int)}))"
    )
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(matrix), str(tmp_path / f"r{i}"), str(cache)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        for i in range(2)
    ]
    outs = [p.communicate(timeout=600) for p in runs]
    assert [p.returncode for p in runs] == [0, 0], [e[-2000:] for _, e in outs]
    stats = [json.loads(o.strip().splitlines()[-1]) for o, _ in outs]
    assert sum(s["models_trained"] for s in stats) == 1, stats
    # 3 attacks, the reference and the convergence run (bench/run/plan.py, added_attacks)
    assert sum(s["cells_computed"] for s in stats) == stats[0]["cells"] == 5, stats
    assert all(s["cells_computed"] + s["cells_cached"] == 5 for s in stats), stats
    tables = [pd.read_parquet(tmp_path / f"r{i}" / "tiny" / "matrix.parquet") for i in range(2)]
    pd.testing.assert_frame_equal(tables[0], tables[1])
    assert not list((cache / "claims").iterdir())  # every claim released
