"""Training seeds: a matrix's ``seeds`` trains every model once per seed, the tables hold each
seed's rows and the rows across the seeds (bench/run/seeds.py), and the pages and ``bench check``
read the rows across seeds."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from bench.core.errors import BenchError
from bench.core.schema import ALL_SEEDS, FLAG_NAMES, MATRIX_COLUMNS, conform, headline
from bench.inputs.matrix import parse_matrix
from bench.inputs.photos import builtin_source
from bench.outputs.check import compare
from bench.outputs.formats import ResultsFolder, baseline_frame, load_results
from bench.outputs.pages import build_page
from bench.run.execute import Runner
from bench.run.plan import make_plan
from bench.run.seeds import seed_rows, with_seed_rows
from bench.run.store import Store
from tests import instant
from tests.test_bookkeeping import instant_doc
from tests.tiny import tiny_doc


@pytest.mark.parametrize(
    ("seeds", "message"),
    [
        ([], "seeds: [] is not allowed; must be a list of 1 to 32 distinct integers"),
        ([0, 0], "seeds: [0, 0] lists a seed twice"),
        ([0, -1], "seeds[1]: -1 is not allowed; must be an integer >= 0"),
        ([0, "1"], "seeds[1]: '1' is not allowed"),
        (3, "seeds: 3 is not allowed; must be a list"),
    ],
)
def test_bad_seeds_are_refused_in_one_line(seeds: Any, message: str) -> None:
    with pytest.raises(BenchError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_matrix(tiny_doc(seeds=seeds))


def test_without_seeds_the_keys_are_those_of_one_training_with_the_matrix_seed() -> None:
    one = parse_matrix(tiny_doc(seed=7))
    three = parse_matrix(tiny_doc(seed=7, seeds=[7, 1, 2]))
    assert one.training_seeds == (7,) and three.training_seeds == (7, 1, 2)
    assert "seeds" not in one.to_dict() and three.to_dict()["seeds"] == [7, 1, 2]
    source = builtin_source()
    plan1, plan3 = make_plan(one, source, threads=1), make_plan(three, source, threads=1)
    assert [j.training_seed for j in plan3.models] == [7, 1, 2]
    assert plan3.models[0].key == plan1.models[0].key  # the matrix's seed: the same model, the same cells
    assert {c.key for c in plan1.cells} <= {c.key for c in plan3.cells}
    assert len({j.key for j in plan3.models}) == 3 and len(plan3.cells) == 3 * len(plan1.cells)
    assert plan1.models[0].label.endswith("none") and plan3.models[1].label.endswith("| seed 1")
    # a source's images are scored on the models of its own seed
    for cell in plan3.transfer_sources:
        targets = plan3.transfer_targets(cell.model.task, cell.model.training_seed)
        assert [t.training_seed for t in targets] == [cell.model.training_seed]


def _rows(robust: list[float], *, n: int = 100, attack: str = "art.pgd", **extra: Any) -> pd.DataFrame:
    """One row per seed of one (model, attack, epsilon), with its Wilson interval."""
    from bench.core.stats import wilson

    rows = []
    for seed, value in enumerate(robust):
        low, high = wilson(round(value * n), n)
        rows.append(
            {
                "task": "median3",
                "detector": "bayar",
                "defense": "none",
                "attack": attack,
                "gradient": "exact",
                "library": "art",
                "norm": "linf",
                "threat": "white-box",
                "minimum_norm": False,
                "quantized": "float",
                "postprocess": "none",
                "epsilon": 2 / 255,
                "epsilon_255": 2.0,
                "n": n,
                "clean_accuracy": 0.9,
                "robust_accuracy": value,
                "robust_accuracy_low": low,
                "robust_accuracy_high": high,
                **dict.fromkeys(["tpr", "tnr", "attack_success_rate", "perturbation_linf_max"], np.nan),
                **dict.fromkeys(
                    [
                        "perturbation_l2_mean",
                        "psnr_mean",
                        "ssim_mean",
                        "queries",
                        "query_budget",
                        "seconds",
                        "train_seconds",
                    ],
                    np.nan,
                ),
                "attacked": n,
                "seed": 0,
                "training_seed": str(seed),
                "device": "cpu",
                "threads": 1,
                "cell": f"c{seed}{attack}",
                "model": f"m{seed}",
                "error": "",
                **extra,
            }
        )
    return pd.DataFrame(rows)


def test_rows_across_seeds_have_the_mean_the_range_and_an_interval_spanning_every_seed() -> None:
    table = conform(
        pd.concat([_rows([0.10, 0.12, 0.11]), _rows([0.10, 0.40, 0.25], attack="foolbox.pgd")]), MATRIX_COLUMNS
    )
    table.loc[1, "flag_not_converged"] = True  # one seed's flag: the row across seeds carries it
    across = seed_rows(table).set_index("attack")
    assert set(across["training_seed"]) == {ALL_SEEDS} and (across["seeds"] == 3).all()
    steady, spread = across.loc["art.pgd"], across.loc["foolbox.pgd"]
    assert steady["robust_accuracy"] == pytest.approx(0.11) and spread["robust_accuracy"] == pytest.approx(0.25)
    assert (spread["robust_accuracy_seed_min"], spread["robust_accuracy_seed_max"]) == (0.10, 0.40)
    per_seed = table[table["attack"] == "foolbox.pgd"]
    assert spread["robust_accuracy_low"] == per_seed["robust_accuracy_low"].min()
    assert spread["robust_accuracy_high"] == per_seed["robust_accuracy_high"].max()
    # a range of 30 points against intervals about 12 points wide: seed sensitive; 2 points: not
    assert spread["flag_seed_sensitive"] and not steady["flag_seed_sensitive"]
    assert steady["flag_not_converged"] and not spread["flag_not_converged"]
    full = with_seed_rows(table)
    assert len(full) == len(table) + 2
    marked = full[full["flag_seed_sensitive"]]
    assert set(marked["attack"]) == {"foolbox.pgd"} and len(marked) == 4  # its 3 seeds' rows and the row across
    assert all("seed_sensitive" in f.split(",") for f in marked["flags"])
    assert list(headline(full)["attack"]) == ["art.pgd", "foolbox.pgd"]


def test_a_seed_whose_cell_failed_fails_the_row_across_seeds() -> None:
    rows = _rows([0.10, 0.20, 0.30])
    rows.loc[2, ["error", "robust_accuracy"]] = ["RuntimeError: boom", np.nan]
    across = seed_rows(conform(rows, MATRIX_COLUMNS)).iloc[0]
    assert across["error"] == "training seed 2 failed: RuntimeError: boom" and across["seeds"] == 2
    assert np.isnan(across["robust_accuracy"])  # not a mean over fewer seeds than the other rows have
    failed = _rows([0.1, 0.2]).assign(error="RuntimeError: boom")
    assert (
        seed_rows(conform(failed, MATRIX_COLUMNS)).iloc[0]["error"] == "training seed 0, 1 failed: RuntimeError: boom"
    )


def test_one_seed_adds_nothing() -> None:
    table = conform(_rows([0.1]), MATRIX_COLUMNS)
    assert seed_rows(table).empty and with_seed_rows(table).equals(table)
    assert set(FLAG_NAMES) >= {"seed_sensitive"}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An instant detector trained with 2 seeds, attacked with FGSM (the reference and the
    convergence run added), on none and grad-penalty: a results folder."""
    folder = tmp_path_factory.mktemp("seeds")
    doc = instant_doc(1)
    doc.update(
        seeds=[0, 1],
        attacks=[*doc["attacks"], "foolbox.fgsm"],
        defenses=["none", "grad-penalty"],
        epsilons_255=[1, 4],
    )
    with instant.detector_registered(), instant.registered():
        runner = Runner(parse_matrix(doc), store=Store(folder / "cache"), sink=ResultsFolder(folder / "out"))
        runner.run()
    return folder / "out"


@pytest.mark.slow
def test_a_seeded_run_has_every_seeds_rows_and_the_rows_across_them(seeded: Path) -> None:
    results = load_results(seeded)
    table, models = results.table, results.models
    assert models is not None and results.seeds == ["0", "1"]
    assert sorted(models["training_seed"].astype(str)) == ["0", "0", "1", "1"] and models["model"].nunique() == 4
    own = table[table["training_seed"] != ALL_SEEDS]
    across = table[table["training_seed"] == ALL_SEEDS]
    assert set(own["training_seed"]) == {"0", "1"}
    keys = ["task", "detector", "defense", "attack", "gradient", "norm", "quantized", "postprocess", "epsilon_255"]
    assert len(own) == 2 * len(across) and not across.duplicated(keys).any()
    assert (own.groupby("training_seed").size() == len(across)).all()  # the ensemble rows too, per seed
    assert set(across["attack"]) == set(own["attack"]) and "ensemble" in set(across["attack"])
    merged = across.merge(own, on=keys, suffixes=("", "_seed"))
    mean = merged.groupby(keys)["robust_accuracy_seed"].mean()
    assert np.allclose(across.set_index(keys)["robust_accuracy"].reindex(mean.index), mean)
    samples = results.read_samples()
    assert samples is not None and set(samples["training_seed"]) == {"0", "1"}
    probes = pd.read_csv(seeded / "probes.csv", dtype={"training_seed": str})
    assert sorted(probes["training_seed"]) == ["0", "0", "1", "1"]
    assert (headline(table)["training_seed"] == ALL_SEEDS).all()


@pytest.mark.slow
def test_pages_and_check_read_the_rows_across_seeds(seeded: Path) -> None:
    results = load_results(seeded)
    page = build_page(results)
    assert ("training seeds", page.header[-1][1]) == page.header[-1] or any(
        k == "training seeds" for k, _ in page.header
    )
    assert page.models is not None and "seed" in page.models.frame.columns
    baseline = baseline_frame(results)
    assert sorted(set(baseline["training_seed"])) == ["0", "1", ALL_SEEDS]  # each seed's rows, and across them
    assert (compare(baseline, results).cells["status"] == "ok").all()
    # a mean moved by 10 points: no regression inside the baseline's across-seed interval, one outside it
    row = baseline.index[baseline["training_seed"] == ALL_SEEDS][0]
    now = float(baseline.loc[row, "robust_accuracy"])
    moved = baseline.copy()
    moved.loc[row, "robust_accuracy"] = now + 0.10 if now + 0.10 <= 1 else now - 0.10
    across = moved["training_seed"] == ALL_SEEDS
    wide = moved.copy()
    wide.loc[across, ["robust_accuracy_low", "robust_accuracy_high"]] = [0.0, 1.0]
    assert (compare(wide, results).cells["status"] == "ok").all()  # anything within the spread passes
    narrow = moved.copy()
    narrow.loc[across, "robust_accuracy_low"] = narrow.loc[across, "robust_accuracy"]
    narrow.loc[across, "robust_accuracy_high"] = narrow.loc[across, "robust_accuracy"]
    failed = compare(narrow, results).failed
    assert len(failed) == 1 and failed["metric"].iloc[0] == "robust_accuracy"


@pytest.mark.parametrize(
    ("robust", "undefended", "verdict"),
    [
        ((0.40, 0.35, 0.45), (0.20, 0.30), "holds"),  # every seed's interval of the defence above
        ((0.33, 0.29, 0.37), (0.20, 0.30), "spread"),  # point estimates apart, intervals overlapping
        ((0.10, 0.05, 0.15), (0.20, 0.30), "reversed"),
    ],
)
def test_a_gain_holds_across_seeds_only_when_the_intervals_spanning_them_are_apart(
    robust: tuple[float, float, float], undefended: tuple[float, float], verdict: str
) -> None:
    from bench.outputs.pages import DefenseComparison

    comparison = DefenseComparison(
        task="median3",
        detector="bayar",
        defense="adv-train",
        eps_star=2.0,
        undefended=0.25,
        robust=robust,
        clean_cost=0.0,
        largest=8.0,
        seeds=3,
        undefended_range=(0.24, 0.26),
        robust_range=(robust[0] - 0.01, robust[0] + 0.01),
        undefended_interval=undefended,
    )
    assert comparison.across_seeds == verdict
    assert dataclasses.replace(comparison, seeds=1).across_seeds is None
