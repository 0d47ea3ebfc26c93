"""Attacks: budgets respected, sweep semantics, failures detected."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from bench.attacks import ATTACKS, create_attack
from bench.attacks.base import BUDGET_TOLERANCE, AttackBudgetError, FixedEpsilonAttack

EPSILONS = (1 / 255, 2 / 255, 4 / 255, 8 / 255)
# white-box Linf attacks with a fixed epsilon, on the trained smoke detectors; every adapter
# (L2, minimum-norm, score- and decision-based, the noise control) is exercised on a tiny model in
# tests/test_attack_adapters.py
LINF_SWEEPS = [
    n
    for n in ATTACKS.names()
    if (a := create_attack(n)).norm == "linf" and not a.minimum_norm and a.threat == "white-box"
]


@pytest.fixture(scope="module")
def attack_inputs(smoke_dataset) -> tuple[np.ndarray, np.ndarray]:
    return smoke_dataset.floats("test")[:64], smoke_dataset.y["test"][:64]


@pytest.mark.parametrize("name", LINF_SWEEPS)
@pytest.mark.parametrize("detector", ["bayar", "srm"])
def test_adversarial_examples_lie_in_their_epsilon_ball_and_in_the_unit_box(
    smoke_models: dict, attack_inputs: tuple, name: str, detector: str
) -> None:
    x, y = attack_inputs
    result = create_attack(name)(smoke_models[detector].model, x, y, EPSILONS, seed=0)
    assert result.x_adv.shape == (len(EPSILONS), *x.shape)
    for k, eps in enumerate(result.epsilons):
        delta = np.abs(result.x_adv[k].astype(np.float64) - x.astype(np.float64))
        assert delta.max() <= eps + BUDGET_TOLERANCE
        assert result.x_adv[k].min() >= 0.0 and result.x_adv[k].max() <= 1.0
    # robust accuracy never rises with epsilon, and the attack finds adversarial examples
    assert (np.diff(result.robust_accuracy) <= 0).all()
    assert result.robust_accuracy[-1] < result.clean_correct.mean()


@pytest.mark.parametrize("name", ATTACKS.names())
def test_predictions_stored_are_those_of_the_stored_examples(
    smoke_models: dict, attack_inputs: tuple, name: str
) -> None:
    from bench.core.inference import evaluation_copy, predict

    x, y = attack_inputs
    model = smoke_models["srm"].model
    result = create_attack(name)(model, x, y, EPSILONS[:2], seed=0)
    # judged on the evaluation copy (frozen, channels-last), as the harness judges: a decision-based
    # attack leaves images on the boundary, where the layout's last-bit rounding can flip them
    judge = evaluation_copy(model)
    for k in range(2):
        assert (predict(judge, result.x_adv[k]) == result.adv_pred[k]).all()


@dataclass(frozen=True, kw_only=True)
class _Outside(FixedEpsilonAttack):
    library = "test"
    factor: float = 1.0
    overshoot: float = 0.0

    def prepare(self, model, input_shape, num_classes, *, device=None):
        return None

    def run(self, handle, x, y, eps):
        return np.clip(x + self.factor * eps, 0, 1 + self.overshoot)


def test_an_attack_that_leaves_its_budget_fails_loudly(smoke_models: dict, attack_inputs: tuple) -> None:
    x, y = attack_inputs
    model = smoke_models["srm"].model
    with pytest.raises(AttackBudgetError, match="Linf exceeds eps"):
        _Outside(factor=1.5, overshoot=0.0)(model, x, y, EPSILONS, seed=0)
    with pytest.raises(AttackBudgetError, match=r"\[0,1\] exceeded"):
        _Outside(factor=0.5, overshoot=0.1)(model, 1 - x * 0, y, EPSILONS, seed=0)
    ok = _Outside(factor=1.0, overshoot=0.0)(model, x, y, EPSILONS, seed=0)  # exactly on the boundary is fine
    assert ok.linf.max() <= EPSILONS[-1] + BUDGET_TOLERANCE


def test_sweep_attacks_only_survivors(smoke_models: dict, attack_inputs: tuple) -> None:
    x, y = attack_inputs
    result = create_attack("art.pgd")(smoke_models["bayar"].model, x, y, EPSILONS, seed=0)
    survivors = np.concatenate([[result.clean_correct.sum()], result.adv_correct.sum(axis=1)[:-1]])
    assert (result.attacked == survivors).all()
    # an example fooled at a smaller epsilon keeps its (smaller) perturbation
    fooled_first = result.clean_correct & ~result.adv_correct[0]
    assert np.allclose(result.x_adv[-1][fooled_first], result.x_adv[0][fooled_first])


def test_same_seed_same_result(smoke_models: dict, attack_inputs: tuple) -> None:
    x, y = attack_inputs
    runs = [create_attack("foolbox.pgd")(smoke_models["bayar"].model, x, y, EPSILONS[:2], seed=3) for _ in range(2)]
    assert np.array_equal(runs[0].x_adv, runs[1].x_adv)


def test_surrogate_attack_crafts_on_the_surrogate_and_judges_on_the_model() -> None:
    """A transfer attack: with a surrogate whose gradient is useless, the target is barely touched."""
    import torch

    from bench.attacks import create_attack

    torch.manual_seed(0)
    target = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 2)).eval()
    flat = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 2)).eval()
    with torch.no_grad():
        flat[1].weight.zero_()  # no input gradient at all
    x = np.random.default_rng(0).random((32, 1, 8, 8), dtype=np.float32)
    with torch.no_grad():
        y = target(torch.from_numpy(x)).argmax(1).numpy()
    attack = create_attack("art.pgd[random_start=false,steps=5]")
    direct = attack(target, x, y, [0.1], seed=0)
    transfer = attack(target, x, y, [0.1], seed=0, surrogate=flat)
    assert direct.robust_accuracy[0] < 0.5
    assert transfer.robust_accuracy[0] == 1.0 and np.array_equal(transfer.clean_pred, direct.clean_pred)
