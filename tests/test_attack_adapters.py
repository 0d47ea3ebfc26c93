"""Every registered attack through the harness on a tiny untrained CNN: contract checks, no training.

Budgets respected in the attack's norm, minimum-norm results consistent with the stored images,
query budgets honoured by score- and decision-based attacks, strong attacks effective, seeds
reproducible, and the registry and the class agreeing on each attack's norm.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from bench.attacks import ATTACKS, attack_class, create_attack
from bench.attacks.base import AttackResult, norms, within

EPSILONS = {"linf": (2 / 255, 8 / 255, 32 / 255), "l2": (0.5, 2.0, 8.0)}  # 1x32x32 images
# white-box attacks that must fool most samples at the largest epsilon
STRONG = {
    "art.pgd",
    "art.bim",
    "art.pgd-l2",
    "art.autoattack",
    "art.deepfool",
    "art.cw-l2",
    "foolbox.pgd",
    "foolbox.pgd-l2",
    "foolbox.deepfool-l2",
    "foolbox.cw-l2",
    "foolbox.fmn-linf",
    "foolbox.fmn-l2",
}


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models run fastest on one thread (and do not fight a busy machine for its cores)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny() -> tuple:
    """A random 2-class CNN, 16 random 1x32x32 images, labels = its own predictions (balanced classes).

    Scaled like the trained smoke detectors (logit margins of a few units, input-gradient norms of
    about 100), whose scale the cost-tuned defaults of C&W and FMN assume; smooth (tanh), since
    boundary-projecting attacks such as FMN can stall exactly on the boundary of a near-linear net.
    """
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3),
        nn.Tanh(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3),
        nn.Tanh(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(32, 2),
    ).eval()
    x = np.random.default_rng(0).random((16, 1, 32, 32), dtype=np.float32)
    with torch.no_grad():
        model[0].weight *= 3
        model[-1].weight *= 1000
        logits = model(torch.from_numpy(x))
        margin = logits[:, 1] - logits[:, 0]
        model[-1].bias[1] -= margin.median() + 1e-3  # centre the margins: both classes predicted
        y = model(torch.from_numpy(x)).argmax(dim=1).numpy()
    assert 4 <= y.sum() <= 12
    return model, x, y


_RESULTS: dict[str, AttackResult] = {}


def _result(name: str, tiny: tuple) -> AttackResult:
    """One sweep per attack name, shared by the checks of this module."""
    if name not in _RESULTS:
        model, x, y = tiny
        _RESULTS[name] = create_attack(name)(model, x, y, EPSILONS[create_attack(name).norm], seed=0)
    return _RESULTS[name]


@pytest.mark.parametrize("name", ATTACKS.names())
def test_attack_runs_within_its_budget(tiny: tuple, name: str) -> None:
    _, x, _ = tiny
    attack = create_attack(name)
    result = _result(name, tiny)
    assert result.norm == attack.norm == attack_class(name).norm
    assert attack.library == name.split(".")[0]  # the canonical name starts with the library
    assert result.clean_correct.all()
    assert result.x_adv.shape == (3, *x.shape)
    eps = result.epsilons
    for k in range(len(eps)):
        assert result.x_adv[k].min() >= 0.0 and result.x_adv[k].max() <= 1.0
        size = norms(result.x_adv[k] - x, attack.norm)
        assert within(size, eps[k]).all(), f"{name} left its {attack.norm} ball at eps={eps[k]:.4g}: {size.max():.4g}"
    assert (np.diff(result.robust_accuracy) <= 0).all()


@pytest.mark.parametrize("name", [n for n in ATTACKS.names() if create_attack(n).minimum_norm])
def test_minimum_norm_attacks_report_consistent_norms(tiny: tuple, name: str) -> None:
    _, x, y = tiny
    result = _result(name, tiny)
    assert result.min_norm is not None and result.min_norm.shape == y.shape
    fooled = np.isfinite(result.min_norm)
    assert fooled.any(), f"{name} found no adversarial example at all"
    assert (result.min_norm[fooled] > 0).all()
    for k, eps in enumerate(result.epsilons):
        taken = within(result.min_norm, eps)
        size = norms(result.x_adv[k] - x, result.norm)
        assert np.allclose(size[taken], result.min_norm[taken], rtol=1e-5, atol=1e-7)
        assert (result.adv_pred[k][taken] != y[taken]).all()  # stored examples are adversarial
        assert np.array_equal(result.x_adv[k][~taken], x[~taken]) and (result.adv_pred[k][~taken] == y[~taken]).all()
    assert np.array_equal(result.robust_accuracy, [(~within(result.min_norm, e)).mean() for e in result.epsilons])


@pytest.mark.parametrize("name", sorted(STRONG))
def test_strong_white_box_attacks_fool_most_samples_at_a_large_epsilon(tiny: tuple, name: str) -> None:
    result = _result(name, tiny)
    assert create_attack(name).threat == "white-box"
    assert result.robust_accuracy[-1] <= 0.25, f"{name}: robust accuracy {result.robust_accuracy}"


@pytest.mark.parametrize("name", [n for n in ATTACKS.names() if create_attack(n).threat in ("score", "decision")])
def test_query_based_attacks_stay_within_their_query_budget(tiny: tuple, name: str) -> None:
    budget = create_attack(name).query_budget()
    result = _result(name, tiny)
    assert isinstance(budget, int) and budget > 0
    assert result.queries is not None
    assert result.queries[0] > 0 and (result.queries <= budget).all(), f"{name}: {result.queries} > {budget}"
    assert result.robust_accuracy[-1] < 1.0  # finds something at the largest epsilon


def test_only_query_based_attacks_have_a_query_budget_and_the_control_is_labelled() -> None:
    for name in ATTACKS.names():
        attack = create_attack(name)
        assert (attack.query_budget() is not None) == (attack.threat in ("score", "decision")), name
    assert create_attack("foolbox.gaussian-noise").threat == "control"


def test_query_budget_follows_the_parameters() -> None:
    assert create_attack("art.square[queries=60]").query_budget() == 60
    assert create_attack("art.hopskipjump").query_budget() == 447
    assert create_attack("art.hopskipjump[steps=2]").query_budget() == 5 + 2 * 22 + 10 + 14
    assert create_attack("foolbox.boundary[steps=50]").query_budget() == 13 + 50 + 5


@pytest.mark.parametrize("name", ["art.square[queries=30]", "art.hopskipjump[steps=2]", "foolbox.boundary[steps=20]"])
def test_same_seed_same_result(tiny: tuple, name: str) -> None:
    model, x, y = tiny
    eps = EPSILONS[create_attack(name).norm]
    runs = [create_attack(name)(model, x, y, eps, seed=5) for _ in range(2)]
    assert np.array_equal(runs[0].x_adv, runs[1].x_adv)
    assert np.array_equal(runs[0].queries, runs[1].queries)


def test_list_shows_every_attack(capsys: pytest.CaptureFixture) -> None:
    from bench.cli import main

    assert main(["list", "attacks"]) == 0
    out = capsys.readouterr().out
    for name in ATTACKS.names():
        assert f"  {ATTACKS.resolve(name)} " in out
