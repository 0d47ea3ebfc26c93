"""End-to-end runs: tables and their schema, honest numbers, cache, interruption, failures."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.api import run
from bench.core.schema import MATRIX_COLUMNS, MODEL_COLUMNS, SAMPLE_COLUMNS
from bench.inputs.matrix import parse_matrix
from bench.run.plan import added_attacks


def test_outputs_are_written(smoke) -> None:
    out = smoke.results_dir / "smoke"
    for name in (
        "matrix.csv",
        "matrix.parquet",
        "samples.parquet",
        "models.csv",
        "curves.pdf",
        "curves.png",
        "run.json",
    ):
        assert (out / name).stat().st_size > 0, name
    info = json.loads((out / "run.json").read_text())
    assert info["configuration"]["profile"] == "smoke"
    assert info["versions"]["torch"].startswith("2.")
    assert info["stats"]["cells"] == 2 * (len(smoke.matrix.attacks) + len(added_attacks(smoke.matrix)))
    assert set(info["datasets"]["median3"]["splits"]) == {"train", "val", "test"}


def test_tables_match_their_schema(smoke) -> None:
    out = smoke.results_dir / "smoke"
    for name, columns in (("matrix.parquet", MATRIX_COLUMNS), ("samples.parquet", SAMPLE_COLUMNS)):
        frame = pd.read_parquet(out / name)
        assert list(frame.columns) == list(columns)
        assert {c: str(t) for c, t in frame.dtypes.items()} == columns
    csv = pd.read_csv(out / "matrix.csv", keep_default_na=False, na_values=[""])
    assert list(csv.columns) == list(MATRIX_COLUMNS)
    assert list(pd.read_csv(out / "models.csv").columns) == list(MODEL_COLUMNS)
    table = smoke.result.table
    attacks = len(smoke.matrix.attacks)
    norms = table[table["attack"] != "ensemble"].groupby("norm")["attack"].nunique()
    # detectors x defences x (attacks, the references and one ensemble per norm) x epsilons x 5
    # variants, and the convergence runs at 2 epsilons
    per_model = (attacks + 2 * len(norms)) * 4 * 5 + len(norms) * 2 * 5
    assert len(table) == 2 * 1 * per_model
    assert (table["error"] == "").all()
    linf = table[table["norm"] == "linf"]
    assert np.allclose(linf["epsilon"] * 255, linf["epsilon_255"])
    l2 = table[table["norm"] == "l2"]
    assert np.allclose(l2["epsilon"], l2["epsilon_255"] / 255 * 64)  # 64x64 grey patches
    variants = table.groupby(["quantized", "postprocess"]).size()
    assert sorted(variants.index) == sorted(
        [("float", "none"), ("uint8", "none"), ("uint8", "jpeg95"), ("uint8", "jpeg85"), ("uint8", "jpeg75")]
    )
    assert (table["robust_accuracy_low"] <= table["robust_accuracy"]).all()
    assert (table["robust_accuracy"] <= table["robust_accuracy_high"]).all()


def test_table_agrees_with_per_sample_outcomes(smoke) -> None:
    samples = smoke.result.samples.set_index(["cell", "epsilon_255", "quantized", "postprocess"]).sort_index()
    table = smoke.result.table
    for _, row in table[table["attack"] != "ensemble"].iterrows():
        s = samples.loc[(row["cell"], row["epsilon_255"], row["quantized"], row["postprocess"])]
        assert len(s) == row["n"]
        assert s["adv_correct"].mean() == pytest.approx(row["robust_accuracy"])
        assert s["clean_correct"].mean() == pytest.approx(row["clean_accuracy"])
        # every stored adversarial image, float or 8-bit, lies inside its budget
        size = s["linf"] if row["norm"] == "linf" else s["l2"]
        assert (size <= row["epsilon"] * (1 + 1e-6) + 1e-6).all()
        assert not (s["adv_correct"] & ~s["clean_correct"]).any()
        if row["postprocess"] == "none":  # 8-bit rounding leaves the (8-bit) clean images as they are
            floats = samples.loc[(row["cell"], row["epsilon_255"], "float", "none")]
            assert (s["clean_correct"].to_numpy() == floats["clean_correct"].to_numpy()).all()


def test_ensemble_is_the_per_sample_worst_case_and_never_above_any_attack(smoke) -> None:
    table, samples = smoke.result.table, smoke.result.samples
    group = ["detector", "defense", "norm", "quantized", "postprocess", "epsilon_255"]
    ensemble = table[table["attack"] == "ensemble"]
    assert len(ensemble) == len(table[table["attack"] != "ensemble"].drop_duplicates(group))
    curve = group[:-1]
    for _, row in ensemble.iterrows():
        key = tuple(row[c] for c in group)
        members = table[(table["attack"] != "ensemble")].set_index(group).loc[[key]]
        assert (row["robust_accuracy"] <= members["robust_accuracy"] + 1e-12).all()
        assert samples.set_index(group).loc[[key]]["cell"].nunique() == len(members)
        # fooled by any attack at this epsilon or a smaller one (the convergence run has two only)
        s = samples[(samples[curve] == row[curve]).all(axis=1) & (samples["epsilon_255"] <= row["epsilon_255"])]
        worst = s.groupby("sample")["adv_correct"].all()
        assert worst.mean() == pytest.approx(row["robust_accuracy"]) and len(worst) == row["n"]
    for _, g in ensemble.groupby(curve):
        assert (np.diff(g.sort_values("epsilon_255")["robust_accuracy"].to_numpy()) <= 1e-12).all()


def test_every_run_adds_the_reference_and_the_convergence_run(smoke) -> None:
    """Per norm of the matrix's attacks: the reference at every epsilon, the convergence run at
    the middle and the largest; an attack the matrix lists itself is not added twice."""
    from bench.attacks import ATTACKS
    from bench.run.plan import added_attacks

    added = {str(spec): eps for spec, eps in added_attacks(smoke.matrix)}
    reference, converge = "bench.pgd[restarts=1,steps=20,travel=2.5]", "bench.pgd[restarts=5,steps=50,travel=2.5]"
    assert added == {
        reference: (),
        converge: (2.0, 8.0),
        reference.replace("pgd", "pgd-l2"): (),
        converge.replace("pgd", "pgd-l2"): (2.0, 8.0),
    }
    table = smoke.result.table
    rows = table[table["attack"] == converge]
    assert sorted(rows["epsilon_255"].unique()) == [2.0, 8.0] and (rows["error"] == "").all()
    listed = dataclasses.replace(smoke.matrix, attacks=(ATTACKS.resolve("art.fgsm"), ATTACKS.resolve("bench.pgd")))
    assert [str(s) for s, _ in added_attacks(listed)] == [converge]
    odd = dataclasses.replace(smoke.matrix, epsilons_255=(8.0, 1.0, 2.0))
    assert {str(s): e for s, e in added_attacks(odd)}[converge] == (2.0, 8.0)


def test_binary_tasks_report_tpr_and_tnr_consistently(smoke) -> None:
    table = smoke.result.table
    samples = smoke.result.samples
    row = table[(table["attack"] != "ensemble")].iloc[-1]
    s = samples[
        (samples["cell"] == row["cell"])
        & (samples["epsilon_255"] == row["epsilon_255"])
        & (samples["quantized"] == row["quantized"])
        & (samples["postprocess"] == row["postprocess"])
    ]
    assert row["tpr"] == pytest.approx(s[s["label"] == 1]["adv_correct"].mean())
    assert row["tnr"] == pytest.approx(s[s["label"] == 0]["adv_correct"].mean())
    assert table["tpr"].notna().all() and table["tnr"].notna().all()


def test_pgd_robust_accuracy_never_rises_with_epsilon(smoke) -> None:
    table = smoke.result.table
    table = table[(table["quantized"] == "float") & (table["postprocess"] == "none")]
    for _, g in table[table["attack"].str.contains("pgd")].groupby(["detector", "defense", "attack"]):
        acc = g.sort_values("epsilon")["robust_accuracy"].to_numpy()
        assert (np.diff(acc) <= 0).all(), acc
        assert acc[-1] < g["clean_accuracy"].iloc[0]


@pytest.mark.parametrize("kind", ["pgd", "fgsm"])
def test_art_and_foolbox_agree_within_their_intervals(smoke, kind: str) -> None:
    table = smoke.result.table
    table = table[(table["quantized"] == "float") & (table["postprocess"] == "none") & (table["norm"] == "linf")]
    table = table.assign(kind=table["attack"].str.extract(r"^\w+\.([\w-]+)")[0])
    for (detector, eps), g in table[table["kind"] == kind].groupby(["detector", "epsilon"]):
        art, fb = g[g["library"] == "art"].iloc[0], g[g["library"] == "foolbox"].iloc[0]
        assert art["robust_accuracy_low"] <= fb["robust_accuracy_high"], (detector, eps)
        assert fb["robust_accuracy_low"] <= art["robust_accuracy_high"], (detector, eps)


def test_undefended_detectors_fail_under_pgd(smoke) -> None:
    t = smoke.result.table
    t = t[(t["quantized"] == "float") & (t["postprocess"] == "none") & (t["norm"] == "linf")]
    pgd8 = t[t["attack"].str.contains("pgd") & (t["epsilon_255"] == 8)]
    assert (pgd8["robust_accuracy"] <= 0.1).all()
    assert (pgd8["clean_accuracy"] - pgd8["robust_accuracy"] >= 0.5).all()


def test_rerun_is_served_from_the_cache(smoke) -> None:
    again = run(smoke.matrix, results_dir=smoke.results_dir, cache_dir=smoke.cache_dir)
    assert again.stats["cells_computed"] == 0 and again.stats["models_trained"] == 0
    added = len(added_attacks(smoke.matrix))
    assert again.stats["cells_cached"] == again.stats["cells"] == 2 * (len(smoke.matrix.attacks) + added)
    pd.testing.assert_frame_equal(again.table, smoke.result.table)


def _tiny(**overrides: object) -> dict:
    doc = {
        "profile": "tiny",
        "seed": 0,
        "n_samples": 40,
        "tasks": ["median3"],
        "detectors": ["srm[width=4]"],
        "defenses": ["none"],
        "attacks": ["foolbox.fgsm", "art.fgsm"],
        "epsilons_255": [1, 4],
        "training": {"epochs": 1, "max_train_patches": 256},
    }
    doc.update(overrides)
    return doc


@pytest.mark.slow
def test_two_fresh_runs_give_identical_numbers(tmp_path: Path) -> None:
    tables = [
        run(parse_matrix(_tiny()), results_dir=tmp_path / f"r{i}", cache_dir=tmp_path / f"c{i}").table for i in range(2)
    ]
    assert tables[0]["cell"].iloc[0] == tables[1]["cell"].iloc[0]
    cols = ["clean_accuracy", "robust_accuracy", "perturbation_linf_max", "perturbation_l2_mean", "cell", "model"]
    pd.testing.assert_frame_equal(tables[0][cols], tables[1][cols])


@pytest.mark.slow
def test_interrupted_run_keeps_finished_cells(tmp_path: Path) -> None:
    matrix = parse_matrix(_tiny())

    def interrupt_after_first_cell(message: str) -> None:
        if message.startswith("[1/4]"):  # 2 attacks, the reference and the convergence run
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(matrix, results_dir=tmp_path, cache_dir=tmp_path / "cache", progress=interrupt_after_first_cell)
    written = pd.read_csv(tmp_path / "tiny" / "matrix.csv")
    cell = written[written["attack"] != "ensemble"]
    assert len(cell) == 2 * 5 and cell["attack"].nunique() == 1  # the finished cell: 2 epsilons x 5 variants
    resumed = run(matrix, results_dir=tmp_path, cache_dir=tmp_path / "cache")
    assert resumed.stats["cells_cached"] == 1 and resumed.stats["cells_computed"] == 3
    assert resumed.stats["models_trained"] == 0


@pytest.mark.slow
def test_a_failing_cell_is_an_error_row_and_is_not_cached(tmp_path: Path) -> None:
    from bench.attacks import ATTACKS, AttackInfo
    from bench.attacks.base import FixedEpsilonAttack

    class Broken(FixedEpsilonAttack):
        library = "test"

        def prepare(self, model, input_shape, num_classes, *, device=None):
            return None

        def run(self, handle, x, y, eps):
            raise RuntimeError("boom")

    ATTACKS.register("test.broken", info=AttackInfo("always fails"))(Broken)
    try:
        matrix = parse_matrix(_tiny(attacks=["test.broken", "art.fgsm"]))
        result = run(matrix, results_dir=tmp_path, cache_dir=tmp_path / "cache")
        broken = result.table[result.table["attack"] == "test.broken"]
        assert len(broken) == 2 * 5 and broken["error"].str.contains("RuntimeError: boom").all()
        assert broken["robust_accuracy"].isna().all()
        assert (result.table[result.table["attack"] == "art.fgsm"]["error"] == "").all()
        assert result.stats["cells_failed"] == 1
        again = run(matrix, results_dir=tmp_path, cache_dir=tmp_path / "cache")
        # the failure was not cached; art.fgsm and the two reference runs were
        assert again.stats["cells_failed"] == 1 and again.stats["cells_cached"] == 3
    finally:
        ATTACKS.unregister("test.broken")


def test_cell_keys_depend_on_content_not_order(tmp_path: Path) -> None:
    from bench.inputs.photos import builtin_source
    from bench.run.plan import make_plan

    source = builtin_source()
    a = {c.label: c.key for c in make_plan(parse_matrix(_tiny()), source, threads=1).cells}
    b = {
        c.label: c.key
        for c in make_plan(parse_matrix(_tiny(attacks=["art.fgsm", "foolbox.fgsm"])), source, threads=1).cells
    }
    assert a == b
    c = {c.label: c.key for c in make_plan(parse_matrix(_tiny(epsilons_255=[1, 2])), source, threads=1).cells}
    assert set(a.values()).isdisjoint(c.values())
    m = parse_matrix(_tiny())
    d = make_plan(dataclasses.replace(m, training=dataclasses.replace(m.training, lr=5e-4)), source, threads=1).cells
    assert {x.model_key for x in d}.isdisjoint({x.model_key for x in make_plan(m, source, threads=1).cells})


@pytest.mark.slow
def test_input_transforms_reuse_the_undefended_model_and_record_the_gradient(tmp_path: Path) -> None:
    matrix = parse_matrix(
        _tiny(defenses=["none", "bit-depth[bits=3]", "gauss-noise[eot_samples=2]"], attacks=["art.pgd[steps=5]"])
    )
    result = run(matrix, results_dir=tmp_path, cache_dir=tmp_path / "cache")
    table = result.table
    assert (table["error"] == "").all(), table["error"].unique()
    by_defense = table[table["attack"] != "ensemble"].groupby("defense")["gradient"].agg(lambda g: sorted(set(g)))
    assert by_defense["none"] == ["exact"]
    assert by_defense["bit-depth[bits=3]"] == ["bpda", "exact", "oblivious"]
    assert by_defense["gauss-noise[eot_samples=2,sigma=2.0]"] == ["eot", "exact", "oblivious"]
    assert table["model"].nunique() == 1 and result.stats["models_trained"] == 1  # one undefended model, shared
    assert table[table["attack"] != "ensemble"]["cell"].nunique() == 7 * 3  # and the two reference runs each
    assert len(result.models) == 3 and result.models["model"].nunique() == 1
    table = table[(table["quantized"] == "float") & (table["postprocess"] == "none") & (table["library"] == "art")]
    bits = table[table["defense"] == "bit-depth[bits=3]"].set_index(["gradient", "epsilon_255"])
    # every evaluation judges through the transform: the same clean accuracy, below the bare model's
    assert bits["clean_accuracy"].nunique() == 1
    for eps in (1.0, 4.0):  # rounding has no gradient: BPDA can only do better than the masked one
        assert bits.loc[("bpda", eps), "robust_accuracy"] <= bits.loc[("exact", eps), "robust_accuracy"]
    samples = result.samples
    assert set(samples["gradient"]) == {"exact", "bpda", "eot", "oblivious"}
    # the rows name the attack each cell ran: BPDA's has more steps (defenses/_transform.py)
    ran = table.groupby("gradient")["attack"].agg(lambda a: sorted(set(a)))
    assert ran["bpda"] == ["art.pgd[random_start=true,rel_stepsize=0.25,steps=10]"]
    assert ran["exact"] == ran["oblivious"] == ran["eot"] == ["art.pgd[random_start=true,rel_stepsize=0.25,steps=5]"]
    ensemble = result.table[result.table["attack"] == "ensemble"]
    assert set(ensemble["gradient"]) == {"any"} and set(ensemble["defense"]) == set(table["defense"])
