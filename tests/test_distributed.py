"""The Dask executor gives the serial run's numbers, survives a killed worker, stops on Ctrl-C, and
leaves no process behind.

The smoke matrix runs serially, on an embedded cluster of two workers (``--workers 2``) and on a
cluster this test starts from the ``dask scheduler`` / ``dask worker`` commands on the loopback
address (``--scheduler``): every table is equal in every column but timings, and ``bench check``
passes against the committed baseline for each. Each run is cold (its own cache), so nothing is
shared but the code. All three have the same torch thread count per cell (THREADS: what two
embedded workers get here), which is in the cell keys and the tables: the serial run is given it
with OMP_NUM_THREADS, the cluster's workers through their Dask config.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import psutil
import pytest

pytestmark = pytest.mark.slow  # each run trains the smoke detectors
ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "results" / "baseline" / "smoke.csv"
TIMINGS = {  # columns that hold times (or whether the cache served a result), not numbers
    "matrix.parquet": ["seconds", "train_seconds"],
    "samples.parquet": [],
    "models.csv": ["train_seconds", "from_cache"],
    "probes.csv": ["seconds"],
    "transfer.parquet": [],
}


THREADS = max(1, len(os.sched_getaffinity(0)) // 2)  # torch threads of a task of `--workers 2`


def read(folder: Path, name: str) -> pd.DataFrame:
    path = folder / name
    frame = pd.read_parquet(path) if name.endswith(".parquet") else pd.read_csv(path, keep_default_na=False)
    return frame.drop(columns=TIMINGS[name]).reset_index(drop=True)


def assert_same_tables(a: Path, b: Path) -> None:
    for name in TIMINGS:
        pd.testing.assert_frame_equal(read(a, name), read(b, name), check_exact=True, obj=name)
    run_a, run_b = (json.loads((f / "run.json").read_text()) for f in (a, b))
    for key in ("configuration", "datasets", "flags", "attacks_run", "images", "device"):
        assert run_a[key] == run_b[key], key


def bench(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "bench", *args], check=False, cwd=ROOT, capture_output=True, text=True, **kwargs
    )


def smoke_args(folder: Path) -> list[str]:
    return ["run", "--profile", "smoke", "--results", str(folder), "--cache-dir", str(folder / "cache"), "-q"]


@pytest.fixture(scope="module")
def serial(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smoke matrix run serially, cold, with THREADS torch threads; its results folder."""
    folder = tmp_path_factory.mktemp("serial")
    done = bench(*smoke_args(folder), env={**os.environ, "OMP_NUM_THREADS": str(THREADS)}, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    return folder / "smoke"


def check(folder: Path) -> None:
    done = bench("check", "--baseline", str(BASELINE), str(folder))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 values differ at all" in done.stdout, done.stdout


@pytest.fixture
def dask_cluster(tmp_path: Path) -> Iterator[Path]:
    """A scheduler and two workers on 127.0.0.1 (one task slot and two), started with the ``dask``
    commands, their torch threads THREADS; the scheduler file to connect with."""
    file = tmp_path / "scheduler.json"
    config = tmp_path / "dask-config"  # the README's advice: no MALLOC_TRIM_THRESHOLD_ in the workers
    config.mkdir()
    (config / "distributed.yaml").write_text(
        "distributed:\n  nanny:\n    pre-spawn-environ:\n      MALLOC_TRIM_THRESHOLD_: null\n"
    )
    # an exported OMP_NUM_THREADS wins over the nanny's default of 1 (as in the README's SLURM recipe)
    env = {**os.environ, "DASK_CONFIG": str(config), "OMP_NUM_THREADS": str(THREADS)}
    dask = [sys.executable, "-m", "dask"]
    procs = [
        subprocess.Popen(
            [*dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file", str(file)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    try:
        deadline = time.monotonic() + 60
        while not file.is_file() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert file.is_file(), "the scheduler did not start"
        worker = [*dask, "worker", "--scheduler-file", str(file), "--no-dashboard", "--host", "127.0.0.1"]
        procs += [  # one worker with two threads: its tasks must still run one at a time
            subprocess.Popen([*worker, "--nthreads", n], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for n in ("1", "2")
        ]
        yield file
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_workers_and_an_existing_cluster_give_the_serial_tables(
    serial: Path, dask_cluster: Path, tmp_path: Path
) -> None:
    check(serial)
    local = tmp_path / "local"
    done = bench(*smoke_args(local), "--workers", "2", timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    assert_same_tables(serial, local / "smoke")
    check(local / "smoke")
    info = json.loads((local / "smoke" / "run.json").read_text())
    assert info["executor"] == {"kind": "dask", "cluster": "local", "workers": 2, "torch_threads_per_task": THREADS}
    assert info["host"]["torch_threads"] == THREADS

    address = json.loads(dask_cluster.read_text())["address"]
    remote = tmp_path / "remote"
    done = bench(*smoke_args(remote), "--scheduler", address, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    assert_same_tables(serial, remote / "smoke")
    check(remote / "smoke")
    info = json.loads((remote / "smoke" / "run.json").read_text())
    assert info["executor"]["cluster"] == "existing" and info["host"]["torch_threads"] == THREADS


def _descendants(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return proc.children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _workers(proc: psutil.Process) -> list[psutil.Process]:
    """The worker processes of an embedded cluster (multiprocessing children, not its resource tracker)."""
    out = []
    for child in _descendants(proc):
        try:
            line = " ".join(child.cmdline())
        except psutil.Error:
            continue
        if "spawn_main" in line and "resource_tracker" not in line:
            out.append(child)
    return out


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(p)
        except psutil.NoSuchProcess:
            pass
    return alive


def _start_run(folder: Path) -> tuple[subprocess.Popen[str], psutil.Process]:
    """A `--workers 2` smoke run in a session of its own (a terminal's Ctrl-C goes to its group)."""
    cmd = [sys.executable, "-m", "bench", *smoke_args(folder), "--workers", "2"]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    return proc, psutil.Process(proc.pid)


def _busiest(workers: list[psutil.Process]) -> psutil.Process:
    """The worker using the most CPU over half a second: the one computing a task."""
    for w in workers:
        w.cpu_percent(None)
    time.sleep(0.5)
    return max(workers, key=lambda w: w.cpu_percent(None))


def _wait_for_cells(cache: Path, count: int, proc: subprocess.Popen[str], timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if len(list((cache / "cells").glob("*.manifest.json"))) >= count:
            return
        time.sleep(0.5)
    raise AssertionError(f"fewer than {count} cells stored before the run ended or the time ran out")


def test_a_killed_worker_loses_only_its_tasks(serial: Path, tmp_path: Path) -> None:
    folder = tmp_path / "killed"
    proc, parent = _start_run(folder)
    seen: list[psutil.Process] = []
    try:
        _wait_for_cells(folder / "cache", 1, proc)
        workers = _workers(parent)
        assert len(workers) == 2, [w.cmdline() for w in workers]
        seen += _descendants(parent)
        _busiest(workers).send_signal(signal.SIGKILL)  # mid-task: the scheduler must rerun what it held
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            seen += _descendants(parent)
            time.sleep(0.5)
        _, err = proc.communicate(timeout=1800)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-3000:]
    assert_same_tables(serial, folder / "smoke")
    assert not _alive(seen), [p.pid for p in _alive(seen)]


def test_ctrl_c_keeps_finished_cells_and_leaves_no_process(tmp_path: Path) -> None:
    folder = tmp_path / "interrupted"
    proc, parent = _start_run(folder)
    try:
        _wait_for_cells(folder / "cache", 1, proc)
        seen = _descendants(parent)
        assert _workers(parent), "no worker process found"
        os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: to the client and its workers
        deadline = time.monotonic() + 300
        while proc.poll() is None and time.monotonic() < deadline:
            seen += _descendants(parent)  # workers the nanny may restart meanwhile
            time.sleep(0.2)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-3000:]
    assert "interrupted" in err
    stored = len(list((folder / "cache" / "cells").glob("*.manifest.json")))
    assert stored >= 1
    table = pd.read_parquet(folder / "smoke" / "matrix.parquet")  # the finished cells' tables
    assert table["cell"].nunique() >= 1
    deadline = time.monotonic() + 10  # reaped by now, or left behind
    while _alive(seen) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(seen), [p.pid for p in _alive(seen)]


def test_input_transforms_share_their_model_on_dask(tmp_path: Path) -> None:
    """A JPEG input transform is attacked on the undefended model (one model key, two jobs): the
    Dask executor trains it once and gives both jobs the serial run's rows."""
    from tests.tiny import TINY_TOML

    matrix = tmp_path / "tiny.toml"
    matrix.write_text(TINY_TOML.replace('defenses = ["none"]', 'defenses = ["none", "jpeg"]'))
    folders = {}
    for name, extra in (("serial", []), ("local", ["--workers", "2"])):
        folders[name] = tmp_path / name
        args = ["run", "--matrix", str(matrix), "--results", str(folders[name]), "-q", *extra]
        done = bench(*args, env={**os.environ, "OMP_NUM_THREADS": str(THREADS)}, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
    assert_same_tables(folders["serial"] / "tiny", folders["local"] / "tiny")
    models = pd.read_csv(folders["local"] / "tiny" / "models.csv")
    assert len(models) == 2 and models["model"].nunique() == 1 and (models["error"].fillna("") == "").all()
