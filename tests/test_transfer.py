"""Post-cell stage: transferability of the kept 8-bit adversarial images, and gallery examples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.core.schema import TRANSFER_COLUMNS
from bench.outputs.formats import read_examples
from bench.run.execute import Runner
from bench.run.scoring import Scores, score_images
from bench.run.store import Store
from bench.run.transfer import pick_examples


def test_transfer_table_covers_every_source_and_target(smoke) -> None:
    out = smoke.results_dir / "smoke"
    table = pd.read_parquet(out / "transfer.parquet")
    assert list(table.columns) == list(TRANSFER_COLUMNS)
    assert {c: str(t) for c, t in table.dtypes.items()} == TRANSFER_COLUMNS
    csv = pd.read_csv(out / "transfer.csv")
    assert len(csv) == len(table)
    # smoke: 2 detectors x 1 defence, the kept attack is ART PGD: 2 sources x 2 targets x 4 epsilons
    assert len(table) == 2 * 2 * len(smoke.matrix.epsilons_255)
    assert set(table["attack"]) == {str(a) for a in smoke.matrix.attacks if a.name == "art.pgd"}
    pairs = table.groupby(["source_detector", "target_detector"]).size()
    assert len(pairs) == 4 and (pairs == len(smoke.matrix.epsilons_255)).all()
    assert (table["white_box"] == (table["source_detector"] == table["target_detector"])).all()
    ok = table["transfer_n"] > 0
    assert (table["target_accuracy_low"] <= table["target_accuracy"]).all()
    assert (table["target_accuracy"] <= table["target_accuracy_high"]).all()
    assert (table.loc[ok, "transfer_success_rate"].between(0, 1)).all()
    assert (table["transfer_n"] <= table["source_fooled"]).all()


def test_white_box_diagonal_reproduces_the_attacks_own_8bit_rows(smoke) -> None:
    """Scoring a source's images on its own model gives the matrix's uint8 / none numbers exactly."""
    transfer = pd.read_parquet(smoke.results_dir / "smoke" / "transfer.parquet")
    table = smoke.result.table
    for _, row in transfer[transfer["white_box"]].iterrows():
        match = table[
            (table["cell"] == row["source_cell"])
            & (table["quantized"] == "uint8")
            & (table["postprocess"] == "none")
            & (table["epsilon_255"] == row["epsilon_255"])
        ]
        assert len(match) == 1
        assert row["target_robust_accuracy"] == pytest.approx(match["robust_accuracy"].iloc[0])
        assert row["target_clean_accuracy"] == pytest.approx(match["clean_accuracy"].iloc[0])
        if row["transfer_n"]:
            assert row["transfer_success_rate"] == 1.0  # every success on the source fools the source


def test_transfer_pairs_are_cached(smoke) -> None:
    runner = Runner(smoke.matrix, store=Store(smoke.cache_dir))
    before = pd.read_parquet(smoke.results_dir / "smoke" / "transfer.parquet")
    runner._transfer(runner.plan())
    assert runner.stats["transfer_pairs_computed"] == 0 and runner.stats["transfer_pairs_cached"] == 4
    assert runner.transfer is not None
    pd.testing.assert_frame_equal(runner.transfer, before)


def test_examples_are_valid_adversarial_pairs(smoke) -> None:
    entries = read_examples(smoke.results_dir / "smoke" / "examples.npz")
    assert [e["detector"].split("[")[0] for e in entries] == ["bayar", "srm"]
    for entry in entries:
        a = entry["arrays"]
        k = len(a["label"])
        assert 1 <= k <= 4 and entry["classes"] == ["pristine", "median3"]
        assert a["x"].dtype == np.uint8 and a["adv"].dtype == np.uint8
        assert a["x"].shape == (k, 1, 64, 64) and a["adv"].shape == (len(a["epsilon_255"]), k, 1, 64, 64)
        assert set(a["label"][:2]) == {0, 1}  # the first examples show both classes
        assert (a["clean_pred"] == a["label"]).all()  # examples are patches the detector gets right clean
        for e, eps in enumerate(a["epsilon_255"]):  # 8-bit images inside their Linf ball
            assert np.abs(a["adv"][e].astype(int) - a["x"].astype(int)).max() <= np.floor(eps)
        assert ((a["clean_prob"] >= 0) & (a["clean_prob"] <= 1)).all()
        assert ((a["adv_pred"] == a["label"]) == (a["adv_prob"] > 0.5)).all()  # binary task


def test_score_images_skips_repeats_without_changing_the_scores() -> None:
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3)).eval()
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (10, 1, 4, 4), dtype=np.uint8)
    adv = np.stack([x, x, x])
    adv[0, :3] ^= 1  # changed at the first epsilon and kept (equal to the previous one) after
    adv[1, :3] = adv[0, :3]
    adv[2, :3] = adv[0, :3]
    adv[2, 5:] ^= 3  # new at the last epsilon
    label = rng.integers(0, 3, 10)
    scores = score_images(model, x, adv, label)
    with torch.no_grad():
        direct = [torch.softmax(model(torch.from_numpy(a.astype(np.float32) / 255)), 1).numpy() for a in (x, *adv)]
    assert (scores.clean_pred == direct[0].argmax(1)).all()
    np.testing.assert_allclose(scores.clean_prob, direct[0][np.arange(10), label], rtol=1e-6)
    for e in range(3):
        assert (scores.adv_pred[e] == direct[e + 1].argmax(1)).all()
        np.testing.assert_allclose(scores.adv_prob[e], direct[e + 1][np.arange(10), label], rtol=1e-6)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_pick_examples_prefers_early_successes_and_alternates_classes(k: int) -> None:
    label = np.array([0, 0, 0, 1, 1, 1])
    x = np.zeros((6, 1, 2, 2), dtype=np.uint8)
    # sample 2 is wrong clean; 0 fooled at e=1, 1 at e=0, 4 at e=0, 5 never, 3 at e=1
    clean_pred = np.array([0, 0, 1, 1, 1, 1])
    adv_pred = np.array([[0, 1, 1, 1, 0, 1], [1, 1, 1, 0, 0, 1]])
    picked = pick_examples(label, x, Scores(clean_pred, adv_pred, np.ones(6), np.ones((2, 6))), k)
    assert list(picked) == [1, 4, 0][:k]
