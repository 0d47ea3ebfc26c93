"""Detectors: shapes, gradients, Bayar's constraint, SRM's fixed filters, and real accuracy."""

from __future__ import annotations

import pytest
import torch

from detectors import DETECTORS, apply_constraints, create_detector
from detectors._networks import is_network

NAMES = [name for name in DETECTORS.names() if not is_network(name)]  # networks load a file: test_networks.py


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("channels", [1, 3])
def test_detector_maps_images_to_logits_with_input_gradients(name: str, channels: int) -> None:
    if channels not in DETECTORS.entry(name).info.channels:
        pytest.skip(f"{name} does not accept {channels} channels")
    torch.manual_seed(0)
    model = create_detector(name, in_channels=channels, num_classes=3).eval()
    x = torch.rand(4, channels, 64, 64, requires_grad=True)
    logits = model(x)
    assert logits.shape == (4, 3)
    logits[:, 0].sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def _bayar_layer(model: torch.nn.Module) -> torch.nn.Conv2d:
    from detectors._layers import BayarConv2d

    return next(m for m in model.modules() if isinstance(m, BayarConv2d))


def _assert_constrained(weight: torch.Tensor) -> None:
    centre = weight[:, :, 2, 2]
    assert torch.allclose(centre, torch.full_like(centre, -1.0))
    off = weight.sum(dim=(1, 2, 3)) - centre.sum(dim=1)
    assert torch.allclose(off, torch.ones_like(off), atol=1e-5)


def test_bayar_constraint_holds_after_every_optimiser_step() -> None:
    torch.manual_seed(0)
    model = create_detector("bayar", in_channels=1, num_classes=2)
    layer = _bayar_layer(model)
    _assert_constrained(layer.weight)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(3):
        loss = torch.nn.functional.cross_entropy(model(torch.rand(8, 1, 64, 64)), torch.randint(2, (8,)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with pytest.raises(AssertionError):  # the raw step leaves the constraint set ...
            _assert_constrained(layer.weight)
        apply_constraints(model)  # ... and the projection restores it
        _assert_constrained(layer.weight)


def test_srm_front_end_is_the_fixed_srm_kernels() -> None:
    model = create_detector("srm", in_channels=1, num_classes=2)
    front = model[0]
    assert not any(p.requires_grad for p in front.parameters())
    kernels = front.weight[:, 0]
    assert torch.allclose(
        kernels[0] * 12,
        torch.tensor(
            [[-1, 2, -2, 2, -1], [2, -6, 8, -6, 2], [-2, 8, -12, 8, -2], [2, -6, 8, -6, 2], [-1, 2, -2, 2, -1]],
            dtype=torch.float32,
        ),
    )
    assert torch.allclose(kernels[1, 1:4, 1:4] * 4, torch.tensor([[-1.0, 2, -1], [2, -4, 2], [-1, 2, -1]]))
    assert torch.allclose(kernels[2, 2, 1:4] * 2, torch.tensor([1.0, -2, 1]))
    assert all(k.sum().abs() < 1e-6 for k in kernels)  # high-pass: flat images give zero residual


@pytest.mark.parametrize("name", ["bayar", "srm"])
def test_detector_beats_chance_by_a_wide_margin(smoke_models: dict, name: str) -> None:
    """Even the short smoke training is far above 50% on the held-out photographs (the smoke profile's detectors)."""
    meta = smoke_models[name].meta
    assert meta.test_n > 400
    assert meta.test_accuracy >= 0.70, meta
