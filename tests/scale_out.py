"""The scale-out benchmark of issue 15: a matrix run cold, serially with 1 torch thread, on an
embedded Dask cluster (``--workers N``, cores // N threads a task) and serially with every core,
one after another on the same machine; wall-clock time, the ratios to the serial runs, and the
peak resident memory of the client and of each worker process (sampled every half second).

    python tests/scale_out.py OUT [--profile default] [--workers 2] [--order serial-1,workers,serial-all]

A benchmark, not a test: it takes the better part of two hours on the 2-core CI machine for the
default matrix, and nothing asserts a time. Run it on a quiet machine (check ``uptime``); each run
gets its own cache under OUT, so each is cold. It also compares the tables: the serial 1-thread
run and the cluster run with 1 thread a task must be equal in every column but timings (the
numbers of runs with other thread counts may differ: the thread count is in the cell keys and
the ``threads`` column, docs/design.md).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.test_distributed import TIMINGS, read


def sample(cmd: list[str], env: dict[str, str], log: Path) -> dict[str, Any]:
    """Run ``cmd``; its wall-clock seconds and the peak RSS (MiB) of it and of each descendant."""
    start = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        root = psutil.Process(proc.pid)
        peak: dict[int, dict[str, Any]] = {}
        while proc.poll() is None:
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            for p in procs:
                try:
                    rss, line = p.memory_info().rss, " ".join(p.cmdline())
                except psutil.Error:
                    continue
                entry = peak.setdefault(p.pid, {"cmd": line, "peak_mib": 0.0})
                entry["peak_mib"] = max(entry["peak_mib"], rss / 2**20)
            time.sleep(0.5)
    wall = time.perf_counter() - start
    workers = [round(v["peak_mib"]) for pid, v in peak.items() if pid != proc.pid and v["peak_mib"] > 100]
    return {
        "rc": proc.returncode,
        "wall_s": round(wall, 1),
        "client_peak_mib": round(peak.get(proc.pid, {}).get("peak_mib", 0.0)),
        "worker_peak_mib": workers,
    }


def differing(a: Path, b: Path) -> dict[str, Any]:
    """Per table: the number of values (outside the timing columns) that differ, and by column.
    Runs with different thread counts differ at least in ``threads`` and the cell keys."""
    out: dict[str, Any] = {}
    for name in TIMINGS:
        if not (a / name).is_file():
            continue
        x, y = read(a, name), read(b, name)
        if x.shape != y.shape or list(x.columns) != list(y.columns):
            out[name] = f"shapes differ: {x.shape} vs {y.shape}"
            continue
        same = (x == y) | (x.isna() & y.isna())
        counts = (~same).sum()
        out[name] = {"values": int(counts.sum()), "columns": {c: int(n) for c, n in counts.items() if n}}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--profile", default="default")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--order", default="serial-1,workers,serial-all")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    runs = {
        "serial-1": ([], {"OMP_NUM_THREADS": "1"}),
        "workers": (["--workers", str(args.workers)], {}),
        "serial-all": ([], {"OMP_NUM_THREADS": str(cores)}),
    }
    results: dict[str, Any] = {}
    for name in args.order.split(","):
        extra, env_extra = runs[name]
        folder = args.out / name
        env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"} | env_extra
        cmd = [sys.executable, "-m", "bench", "run", "--profile", args.profile, "--results", str(folder)]
        cmd += ["--cache-dir", str(folder / "cache"), *extra]
        folder.mkdir(parents=True, exist_ok=True)
        load = os.getloadavg()
        result = sample(cmd, env, folder / "log.txt") | {"load_before": [round(v, 2) for v in load]}
        results[name] = result
        print(name, json.dumps(result), flush=True)
    tables = {name: args.out / name / args.profile for name in results}
    for name, compared in (("serial-1", "workers_vs_serial_1"), ("serial-all", "workers_vs_serial_all")):
        if name in results and "workers" in results:
            results[compared] = differing(tables[name], tables["workers"])
    for name, base in (("serial-1", "ratio_to_serial_1"), ("serial-all", "ratio_to_serial_all")):
        if name in results and "workers" in results:
            results[base] = round(results["workers"]["wall_s"] / results[name]["wall_s"], 3)
    (args.out / "scale_out.json").write_text(json.dumps(results, indent=1))
    print(pd.Series({k: v for k, v in results.items() if not isinstance(v, dict)}).to_string())
    print(json.dumps({k: v for k, v in results.items() if k.endswith(("_1", "_all"))}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
