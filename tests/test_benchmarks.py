"""Speed of the attack adapters relative to a raw PyTorch PGD measured in the same run.

pytest-benchmark times each; the ratios against the raw baseline are printed at the end of
the session (see conftest.pytest_terminal_summary). Nothing here asserts a wall-clock time;
the assertions only check that every contender did the same work.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.attacks import create_attack

EPS = 2 / 255
STEPS, REL_STEP = 10, 0.25
N = 128
BASELINE = "raw-torch"
MEDIANS: dict[str, float] = {}
pytestmark = pytest.mark.slow  # timed runs of 10-step attacks


def raw_pgd(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Linf PGD with random start written directly in PyTorch (the baseline)."""
    step = REL_STEP * EPS
    adv = (x + torch.empty_like(x).uniform_(-EPS, EPS)).clamp(0, 1)
    for _ in range(STEPS):
        adv.requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(model(adv), y)
        (grad,) = torch.autograd.grad(loss, adv)
        adv = torch.min(torch.max(adv.detach() + step * grad.sign(), x - EPS), x + EPS).clamp(0, 1)
    return adv


@pytest.fixture(scope="module")
def workload(smoke_models: dict, smoke_dataset) -> tuple:
    model = smoke_models["srm"].model.eval()
    return model, smoke_dataset.floats("test")[:N], smoke_dataset.y["test"][:N]


@pytest.mark.parametrize("contender", [BASELINE, "art.pgd", "foolbox.pgd"])
def test_pgd_speed(benchmark, workload: tuple, contender: str) -> None:
    model, x, y = workload
    benchmark.group = f"Linf PGD, {STEPS} steps, {N} patches 64x64"
    if contender == BASELINE:
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        out = benchmark.pedantic(lambda: raw_pgd(model, xt, yt).numpy(), rounds=3, warmup_rounds=1)
    else:
        attack = create_attack(f"{contender}[random_start=true,rel_stepsize={REL_STEP},steps={STEPS}]")
        handle = attack.prepare(model, tuple(x.shape[1:]), 2)
        out = benchmark.pedantic(lambda: attack.run(handle, x, y, EPS), rounds=3, warmup_rounds=1)
    assert out.shape == x.shape
    assert np.abs(out - x).max() <= EPS + 1e-6
    if benchmark.stats is not None:  # None under --benchmark-disable
        MEDIANS[contender] = benchmark.stats.stats.median
