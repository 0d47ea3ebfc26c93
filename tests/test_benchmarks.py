"""Speed of the attacks relative to hand-written PyTorch baselines measured in the same run.

pytest-benchmark times each; the ratios against the baseline of each group are printed at the
end of the session (see conftest.pytest_terminal_summary). Nothing here asserts a wall-clock time;
the assertions only check that every contender did the same work.

Two groups of baselines:
- ``raw-torch``: a hand-written Linf PGD-10 with random start on the same model copy (frozen,
  channels-last: ``bench.core.inference.evaluation_copy``), against ``art.pgd`` and
  ``foolbox.pgd`` with the same steps, step size and batch (the library's ``run`` at one epsilon);
- ``replay``: for one white-box, one minimum-norm, one score-based and one decision-based attack,
  the whole harness call (``Attack.__call__``: the sweep, its checks, its predictions) against a
  hand-written loop making exactly the model calls the attack made (``bench.studies.costs.replay``,
  counted by ``bench.attacks.base.EvaluationCounter``): the floor of ``python -m bench costs``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.attacks import create_attack
from bench.core.inference import evaluation_copy
from bench.studies.costs import hand_written_pgd, replay

EPS = 2 / 255
STEPS, REL_STEP = 10, 0.25
N = 128
N_REPLAY = 64  # the score- and decision-based attacks are slow: fewer patches
BASELINE = "raw-torch"
BASELINES = (BASELINE, "replay")  # the hand-written contender of each group
# each group's medians by contender
MEDIANS: dict[str, dict[str, float]] = {}
pytestmark = pytest.mark.slow  # timed runs of attacks
REPLAYED = [
    "art.pgd",  # white-box, fixed epsilon
    "foolbox.fmn-linf",  # minimum-norm
    "art.square[queries=100]",  # score-based
    "foolbox.boundary[steps=100]",  # decision-based
]


@pytest.fixture(scope="module")
def workload(smoke_models: dict, smoke_dataset) -> dict[str, tuple]:
    """Per detector: the model as attacks run it, test patches and labels."""
    x, y = smoke_dataset.floats("test")[:N], smoke_dataset.y["test"][:N]
    return {name: (evaluation_copy(trained.model), x, y) for name, trained in smoke_models.items()}


def _record(benchmark, group: str, contender: str) -> None:
    if benchmark.stats is not None:  # None under --benchmark-disable
        MEDIANS.setdefault(group, {})[contender] = benchmark.stats.stats.median


@pytest.mark.parametrize("detector", ["bayar", "srm"])
@pytest.mark.parametrize("contender", [BASELINE, "art.pgd", "foolbox.pgd"])
def test_pgd_speed(benchmark, workload: dict, detector: str, contender: str) -> None:
    model, x, y = workload[detector]
    group = f"Linf PGD-{STEPS}, {N} patches, {detector}"
    benchmark.group = group
    if contender == BASELINE:
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        out = benchmark.pedantic(
            lambda: hand_written_pgd(model, xt, yt, EPS, STEPS, REL_STEP).numpy(), rounds=5, warmup_rounds=1
        )
    else:
        attack = create_attack(f"{contender}[random_start=true,rel_stepsize={REL_STEP},steps={STEPS}]")
        handle = attack.prepare(model, tuple(x.shape[1:]), 2)
        out = benchmark.pedantic(lambda: attack.run(handle, x, y, EPS), rounds=5, warmup_rounds=1)
    assert out.shape == x.shape
    assert np.abs(out - x).max() <= EPS + 1e-6
    _record(benchmark, group, contender)


@pytest.mark.parametrize("contender", ["replay", "attack"])
@pytest.mark.parametrize("name", REPLAYED)
def test_attack_against_its_floor(benchmark, workload: dict, name: str, contender: str) -> None:
    """The attack through the harness against a loop making the same model calls."""
    model, x, y = workload["bayar"]
    x, y = x[:N_REPLAY], y[:N_REPLAY]
    attack = create_attack(name)
    eps = [e / 255 if attack.norm == "linf" else e / 255 * 64 for e in (1, 2, 4, 8)]
    first = attack(model, x, y, eps, seed=0)
    calls = first.evaluations
    assert calls and sum(calls.values()) > 0  # the counter saw the attack's model calls
    group = f"{name} against its floor, {N_REPLAY} patches"
    benchmark.group = group
    if contender == "replay":
        benchmark.pedantic(lambda: replay(model, x, calls), rounds=3, warmup_rounds=1)
    else:
        again = benchmark.pedantic(lambda: attack(model, x, y, eps, seed=0), rounds=3, warmup_rounds=1)
        assert again.evaluations == calls  # seeded: every run makes the same calls
        np.testing.assert_array_equal(again.adv_pred, first.adv_pred)
    _record(benchmark, group, contender)
