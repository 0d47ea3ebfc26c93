"""Regression check against a baseline: unchanged, regression (named cells), cannot compare."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from bench.outputs.check import BASELINE_COLUMNS, CannotCompare, check, compare, fisher_p, write_baseline
from bench.outputs.formats import Results, read_baseline

REPO = Path(__file__).resolve().parents[1]


def _cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bench", "check", *args],
        check=False,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture()
def pair(smoke, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the smoke run's folder and a baseline written from it."""
    folder = tmp_path / "smoke"
    folder.mkdir()
    for name in ("matrix.parquet", "run.json", "models.csv"):
        shutil.copy(smoke.results_dir / "smoke" / name, folder / name)
    baseline, _ = write_baseline(folder, tmp_path / "baseline" / "smoke.csv")
    return folder, baseline


def _edit(folder: Path, change) -> None:
    table = pd.read_parquet(folder / "matrix.parquet")
    change(table)
    table.to_parquet(folder / "matrix.parquet", index=False)


def test_the_committed_smoke_baseline_matches_a_fresh_smoke_run(smoke) -> None:
    """The fixture's run is a fresh run of unchanged code: the committed baseline must hold."""
    comparison = check(smoke.results_dir / "smoke", REPO / "results" / "baseline" / "smoke.csv")
    assert comparison.failed.empty, comparison.failed.to_string()
    assert comparison.compared == len(smoke.result.table)


def test_unchanged_results_exit_0(pair) -> None:
    folder, baseline = pair
    proc = _cli(str(folder), "--baseline", str(baseline))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "unchanged" in proc.stdout and "0 values differ at all" in proc.stdout
    assert list(pd.read_csv(baseline).columns) == BASELINE_COLUMNS
    assert json.loads(baseline.with_suffix(".json").read_text())["configuration"]["profile"] == "smoke"


PGD = "art.pgd[random_start=true,rel_stepsize=0.25,steps=10]"


@pytest.mark.parametrize(
    ("metric", "delta", "status"),
    [
        ("robust_accuracy", +0.30, "rise"),  # a weakened attack
        ("robust_accuracy", -0.008, "ok"),  # one patch of 120: below the minimum effect
        ("clean_accuracy", -0.20, "drop"),
        ("clean_accuracy", +0.05, "ok"),  # 5 points on n = 120 is not significant
    ],
)
def test_a_change_fails_only_when_large_and_significant(pair, metric: str, delta: float, status: str) -> None:
    folder, baseline = pair
    rows = lambda t: (t["attack"] == PGD) & (t["epsilon_255"] == 2) & t["detector"].str.startswith("bayar")
    _edit(folder, lambda t: t.__setitem__(metric, t[metric].where(~rows(t), (t[metric] + delta).clip(0, 1))))
    comparison = check(folder, baseline)
    changed = comparison.changed
    assert len(changed) == 5 and set(changed["metric"]) == {metric}  # 5 variants of the cell at e = 2
    assert set(changed["status"]) == {status}
    proc = _cli(str(folder), "--baseline", str(baseline))
    assert proc.returncode == (0 if status == "ok" else 1), proc.stdout
    if status != "ok":
        assert "REGRESSION" in proc.stdout and "median3 | bayar" in proc.stdout and PGD in proc.stdout


def test_an_error_row_is_a_regression(pair) -> None:
    folder, baseline = pair
    _edit(folder, lambda t: t.__setitem__("error", t["error"].where(t["attack"] != PGD, "RuntimeError: boom")))
    proc = _cli(str(folder), "--baseline", str(baseline))
    assert proc.returncode == 1 and "error" in proc.stdout


def _drop_rows(folder: Path, baseline: Path) -> None:
    _edit(folder, lambda t: t.drop(t.index[:3], inplace=True))


def _drop_baseline_rows(folder: Path, baseline: Path) -> None:
    frame = pd.read_csv(baseline)
    frame.iloc[2:].to_csv(baseline, index=False)


def _other_config(folder: Path, baseline: Path) -> None:
    info = json.loads((folder / "run.json").read_text())
    info["configuration"]["n_samples"] = 60
    (folder / "run.json").write_text(json.dumps(info))


def _other_n(folder: Path, baseline: Path) -> None:
    _edit(folder, lambda t: t.__setitem__("n", t["n"] + 1))


def _not_a_baseline(folder: Path, baseline: Path) -> None:
    baseline.write_text("a,b\n1,2\n")


def _no_baseline(folder: Path, baseline: Path) -> None:
    baseline.unlink()


def _no_results(folder: Path, baseline: Path) -> None:
    (folder / "matrix.parquet").unlink()


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (_drop_rows, "3 cells missing from"),
        (_drop_baseline_rows, "2 cells not in the baseline"),
        (_other_config, "configuration differs from the baseline's in n_samples"),
        (_other_n, "n differs (120 in the baseline, 121 now)"),
        (_not_a_baseline, "not a baseline; lacks columns task"),
        (_no_baseline, "no such file"),
        (_no_results, "no matrix.parquet"),
    ],
)
def test_cannot_compare_exits_2_with_one_line(pair, spoil, message: str) -> None:
    folder, baseline = pair
    spoil(folder, baseline)
    with pytest.raises(CannotCompare):
        check(folder, baseline)
    proc = _cli(str(folder), "--baseline", str(baseline))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_update_rewrites_the_baseline_and_defaults_follow_the_folder_name(pair, tmp_path: Path) -> None:
    folder, _ = pair
    proc = _cli("--update", str(folder), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    written = tmp_path / "results" / "baseline" / "smoke.csv"
    assert written.is_file() and written.with_suffix(".json").is_file()
    proc = _cli(str(folder), cwd=tmp_path)  # --baseline defaults to results/baseline/<folder name>.csv
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_fisher_test_is_two_sided_and_symmetric() -> None:
    assert fisher_p(20, 120, 20, 120) == pytest.approx(1.0)
    assert fisher_p(0, 120, 10, 120) == pytest.approx(fisher_p(10, 120, 0, 120))
    assert fisher_p(0, 120, 10, 120) < 0.01 < fisher_p(0, 120, 2, 120)


def test_the_device_setting_is_noted_not_compared(tmp_path: Path) -> None:
    """A baseline from before the ``device`` setting reads as ``auto``; another device is a note."""
    baseline, meta = read_baseline(REPO / "results" / "baseline" / "smoke.csv")
    # as written before the setting existed (the committed baseline has it now)
    meta = {**meta, "configuration": {k: v for k, v in meta["configuration"].items() if k != "device"}}
    table = baseline.assign(error="")
    for device, note in (("auto", False), ("cuda", True)):
        run = {"configuration": {**meta["configuration"], "device": device}}
        comparison = compare(baseline, Results(tmp_path, table, run=run), meta=meta)
        assert comparison.failed.empty
        assert any("device setting differs from the baseline's: auto -> cuda" in n for n in comparison.notes) == note
    other = {"configuration": {**meta["configuration"], "device": "cpu", "seed": 1}}
    with pytest.raises(CannotCompare, match=r"configuration differs from the baseline's in seed$"):
        compare(baseline, Results(tmp_path, table, run=other), meta=meta)


def test_the_thread_count_is_noted_not_compared(tmp_path: Path) -> None:
    """A baseline records its cells' torch thread count; a run with another count is compared
    statistically (its cells are other cells) and the difference is a note. A baseline from before
    the count was recorded notes nothing."""
    baseline, meta = read_baseline(REPO / "results" / "baseline" / "smoke.csv")
    table = baseline.assign(error="")
    for recorded, threads, note in ((None, 1, False), (2, 2, False), (2, 1, True)):
        run = {"configuration": meta["configuration"], "host": {"torch_threads": threads}}
        comparison = compare(baseline, Results(tmp_path, table, run=run), meta={**meta, "threads": recorded})
        assert comparison.failed.empty
        assert any("torch thread count differs from the baseline's: 2 -> 1" in n for n in comparison.notes) == note
