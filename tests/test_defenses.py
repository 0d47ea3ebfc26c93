"""Defences: the training objectives really are what they claim."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from defenses import DEFENSES, Defense, DefenseInfo, create_defense
from defenses._transform import InputTransform
from detectors import DETECTORS, create_detector

DETECTORS_SPEC = DETECTORS.resolve("srm[width=8]")
TRAINING_DEFENSES = [n for n in DEFENSES.names() if DEFENSES.entry(n).info.kind == "training"]
INPUT_TRANSFORMS = [n for n in DEFENSES.names() if DEFENSES.entry(n).info.kind == "transform"]


def _info(name: str) -> DefenseInfo:
    info = DEFENSES.entry(name).info
    assert isinstance(info, DefenseInfo)
    return info


def _batch() -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    """A small untrained detector in training mode and a random batch (the objectives, not the detector, are tested)."""
    torch.manual_seed(0)
    model = create_detector("srm[width=4]", in_channels=1, num_classes=2).train()
    return model, torch.rand(8, 1, 32, 32), torch.randint(2, (8,))


@pytest.mark.parametrize("name", TRAINING_DEFENSES)
def test_every_training_defense_gives_a_differentiable_scalar_loss(name: str) -> None:
    model, x, y = _batch()
    loss = create_defense(name).loss(model, x, y)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_none_is_cross_entropy() -> None:
    model, x, y = _batch()
    assert torch.allclose(create_defense("none").loss(model, x, y), F.cross_entropy(model(x), y))


def test_grad_penalty_adds_lambda_times_input_gradient_norm() -> None:
    model, x, y = _batch()
    xg = x.clone().requires_grad_(True)
    per_sample = F.cross_entropy(model(xg), y, reduction="none")
    (grad,) = torch.autograd.grad(per_sample.sum(), xg)
    expected = per_sample.mean() + 0.5 * grad.flatten(1).norm(dim=1).mean()
    got = create_defense("grad-penalty[lambda=0.5]").loss(model, x, y)
    assert torch.allclose(got, expected, rtol=1e-5)
    assert got > per_sample.mean()


def test_grad_penalty_back_propagates_through_the_gradient() -> None:
    """Double back-propagation: the penalty term changes the parameter gradients."""
    grads = []
    for lam in (0.0, 1.0):
        model, x, y = _batch()
        create_defense(f"grad-penalty[lambda={lam}]").loss(model, x, y).backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    assert not torch.allclose(grads[0], grads[1])


@pytest.mark.parametrize("name", DEFENSES.names())
def test_the_registered_kind_is_what_the_entry_builds(name: str) -> None:
    """A defence's kind and gradients are registry metadata: building it must agree with them."""
    info, built = _info(name), create_defense(name)
    assert info.kind in ("training", "transform")
    assert isinstance(built, Defense if info.kind == "training" else InputTransform)
    assert info.adaptive in info.gradients
    if info.kind == "training":
        assert info.gradients == ("exact",)


def test_the_seed_paper_defenses_are_registered() -> None:
    assert {"none", "grad-penalty", "adv-train", "grad-penalty+adv-train", "trades"} <= set(TRAINING_DEFENSES)
    assert {"jpeg", "median-smooth", "bit-depth", "gauss-noise"} <= set(INPUT_TRANSFORMS)


def test_squared_grad_penalty_uses_the_squared_norm() -> None:
    model, x, y = _batch()
    xg = x.clone().requires_grad_(True)
    per_sample = F.cross_entropy(model(xg), y, reduction="none")
    (grad,) = torch.autograd.grad(per_sample.sum(), xg)
    expected = per_sample.mean() + 0.5 * grad.flatten(1).pow(2).sum(dim=1).mean()
    got = create_defense("grad-penalty[lambda=0.5,squared=true]").loss(model, x, y)
    assert torch.allclose(got, expected, rtol=1e-5)


@pytest.mark.parametrize("name", ["adv-train", "adv-train[attack=pgd,steps=3]", "grad-penalty+adv-train", "trades"])
def test_fused_trainers_see_adversarial_images(name: str) -> None:
    """On the first batch the crafted images lie in the eps ball and raise the loss above the clean loss."""
    from defenses.adv_train import AdversarialTraining
    from defenses.trades import Trades

    model, x, y = _batch()
    defense = create_defense(f"{name[:-1]},eps=8.0]" if "[" in name else f"{name}[eps=8.0]")
    if isinstance(defense, Trades):
        from defenses._adversary import craft

        model.eval()
        p = F.softmax(model(x), dim=1).detach()
        x_adv = craft(
            model,
            x,
            lambda logits: F.kl_div(F.log_softmax(logits, 1), p, reduction="sum"),
            eps=defense.eps,
            steps=defense.steps,
            step_size=2.5 * defense.eps / defense.steps,
            start="gaussian",
        )
    else:
        assert isinstance(defense, AdversarialTraining)
        x_adv = defense.adversarial(model, x, y)
        assert model.training  # crafting leaves the model in training mode
    assert (x_adv - x).abs().max() <= 8 / 255 + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1
    assert (x_adv - x).abs().max() > 4 / 255  # it moved
    model.eval()
    with torch.no_grad():
        if isinstance(defense, Trades):  # TRADES' adversary maximises the KL to the clean prediction
            noisy = (x + torch.empty_like(x).uniform_(-8 / 255, 8 / 255)).clamp(0, 1)
            kl = [F.kl_div(F.log_softmax(model(v), 1), p, reduction="sum") for v in (x_adv, noisy)]
            assert kl[0] > kl[1] > 0
        else:
            assert F.cross_entropy(model(x_adv), y) > F.cross_entropy(model(x), y)


def test_fgsm_adversarial_training_takes_one_step_only() -> None:
    from bench.core.errors import BenchError

    with pytest.raises(BenchError, match="attack=fgsm takes one step, not steps=3; use attack=pgd"):
        DEFENSES.resolve("adv-train[attack=fgsm,steps=3]")
    assert str(DEFENSES.resolve("adv-train[attack=pgd,steps=3]")) == "adv-train[attack=pgd,eps=1.0,mix=0.5,steps=3]"


def test_grad_penalty_reduces_the_measured_input_gradient_norm(smoke_dataset) -> None:
    """Trained on the same data with the same seed, the penalised detector has smaller input gradients."""
    from bench.core.config import TrainingConfig
    from bench.run.training import train

    config = TrainingConfig(epochs=2, max_train_patches=768)
    x = torch.from_numpy(smoke_dataset.floats("test")[:256])
    y = torch.from_numpy(smoke_dataset.y["test"][:256])
    norms = {}
    for name in ("none", "grad-penalty[lambda=0.05]"):
        model, _ = train(DETECTORS_SPEC, smoke_dataset, DEFENSES.resolve(name), config, 0)
        xg = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(model(xg), y, reduction="sum"), xg)
        norms[name] = float(grad.flatten(1).norm(dim=1).mean())
    assert norms["grad-penalty[lambda=0.05]"] < norms["none"], norms


def _toy_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3), torch.nn.Tanh(), torch.nn.Flatten(), torch.nn.Linear(4 * 14 * 14, 2)
    ).eval()


@pytest.mark.parametrize("name", INPUT_TRANSFORMS)
def test_input_transform_predicts_through_the_transform(name: str) -> None:
    model, transform = _toy_model(), create_defense(name)
    x = torch.rand(6, 1, 16, 16)
    for gradient in _info(name).gradients:
        wrapped = transform.wrap(model, gradient, seed=3)
        t = transform.apply(x, torch.Generator().manual_seed(3))
        assert torch.allclose(wrapped(x), model(t), atol=1e-6), gradient
        assert t.min() >= 0 and t.max() <= 1


@pytest.mark.parametrize("name", [n for n in INPUT_TRANSFORMS if "bpda" in _info(n).gradients])
def test_bpda_passes_the_gradient_at_the_transformed_point(name: str) -> None:
    model, transform = _toy_model(), create_defense(name)
    x = torch.rand(6, 1, 16, 16)
    y = torch.tensor([0, 1, 0, 1, 0, 1])
    xg = x.clone().requires_grad_(True)
    (bpda,) = torch.autograd.grad(F.cross_entropy(transform.wrap(model, "bpda", 0)(xg), y), xg)
    tg = transform.apply(x, torch.Generator()).requires_grad_(True)
    (at_t,) = torch.autograd.grad(F.cross_entropy(model(tg), y), tg)
    assert torch.allclose(bpda, at_t, atol=1e-7) and bpda.abs().sum() > 0
    xg = x.clone().requires_grad_(True)
    (exact,) = torch.autograd.grad(F.cross_entropy(transform.wrap(model, "exact", 0)(xg), y), xg)
    if name in ("jpeg", "bit-depth"):  # computed outside autograd / by rounding: the naive gradient is zero
        assert exact.abs().sum() == 0


def test_eot_gradient_averages_over_fresh_noise_draws() -> None:
    model, transform = _toy_model(), create_defense("gauss-noise[eot_samples=5,sigma=20.0]")
    x = torch.rand(4, 1, 16, 16)
    y = torch.tensor([0, 1, 0, 1])
    xg = x.clone().requires_grad_(True)
    (eot,) = torch.autograd.grad(F.cross_entropy(transform.wrap(model, "eot", seed=7)(xg), y), xg)
    # replay: the forward pass takes one draw (the prediction), the backward pass five fresh ones
    generator = torch.Generator().manual_seed(7)
    logits = model(transform.apply(x, generator)).detach().requires_grad_(True)
    grad_out = torch.autograd.grad(F.cross_entropy(logits, y), logits)[0]
    per_draw = []
    for _ in range(5):
        xi = x.clone().requires_grad_(True)
        per_draw.append(torch.autograd.grad(model(transform.apply(xi, generator)), xi, grad_out)[0])
    assert torch.allclose(eot, torch.stack(per_draw).mean(0), atol=1e-7)
    assert not torch.allclose(per_draw[0], per_draw[1])  # the draws really differ
    single = transform.wrap(model, "exact", seed=7)
    xg = x.clone().requires_grad_(True)
    (one,) = torch.autograd.grad(F.cross_entropy(single(xg), y), xg)
    assert not torch.allclose(one, eot)


@pytest.mark.parametrize("name", INPUT_TRANSFORMS)
def test_every_transform_is_attacked_obliviously_first_and_names_an_adaptive_gradient(name: str) -> None:
    info = _info(name)
    assert info.gradients[0] == "oblivious" and "exact" in info.gradients
    assert info.adaptive in info.gradients[1:]


@pytest.mark.parametrize("name", INPUT_TRANSFORMS)
def test_bpda_cells_run_their_attack_with_more_steps_and_the_others_unchanged(name: str) -> None:
    from bench.attacks import ATTACKS
    from defenses._transform import BPDA_STEPS_FACTOR, attack_for

    pgd, fgsm = ATTACKS.resolve("art.pgd[steps=7]"), ATTACKS.resolve("art.fgsm")
    for gradient in _info(name).gradients:
        expected = 7 * BPDA_STEPS_FACTOR if gradient == "bpda" else 7
        assert attack_for(pgd, gradient).get("steps") == expected
        assert attack_for(fgsm, gradient) == fgsm  # no steps to raise
    assert BPDA_STEPS_FACTOR > 1
