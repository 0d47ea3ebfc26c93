"""8-bit rounding, JPEG post-processing and minimum-norm sweeps: budgets hold, nothing is skipped."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.attacks.base import AttackBudgetError, FixedEpsilonAttack, MinimumNormAttack, norms, quantize, within
from bench.core.inference import predict
from bench.run.postprocess import JPEG_QUALITIES, VARIANTS, jpeg, variants


def _grid_images(n: int = 12, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, size=(n, 1, 16, 16)) / 255.0).astype(np.float32)


def _tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 14 * 14, 2)
    ).eval()


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("eps_255", [0.5, 1.0, 2.5, 8.0])
def test_quantized_images_are_on_the_grid_inside_the_budget_and_the_box(norm: str, eps_255: float) -> None:
    x = _grid_images()
    rng = np.random.default_rng(1)
    eps = eps_255 / 255.0 if norm == "linf" else eps_255 / 255.0 * 16
    if norm == "linf":
        adv = np.clip(x + rng.uniform(-eps, eps, size=x.shape), 0, 1)
    else:  # random directions scaled onto the sphere of radius eps, then clipped into the box
        d = rng.normal(size=x.shape)
        d *= eps / np.sqrt((d.reshape(len(d), -1) ** 2).sum(axis=1)).reshape(-1, 1, 1, 1)
        adv = np.clip(x + d, 0, 1)
    q = quantize(adv.astype(np.float32), x, eps, norm)
    assert np.allclose(q * 255, np.rint(q * 255), atol=1e-4)  # 8-bit levels
    assert within(norms(q.astype(np.float64) - x, norm), eps).all()
    assert q.min() >= 0 and q.max() <= 1
    if eps_255 >= 1:  # rounding keeps most of the perturbation when the budget spans whole levels
        assert norms(q - x, "l2").mean() > 0.3 * norms(adv - x, "l2").mean()


def test_quantize_refuses_clean_images_off_the_grid() -> None:
    x = _grid_images() + np.float32(0.3 / 255)
    with pytest.raises(ValueError, match="8-bit grid"):
        quantize(x, x, 1 / 255, "linf")


def test_jpeg_is_deterministic_changes_images_and_more_so_at_lower_quality() -> None:
    x = _grid_images(4)
    errors = []
    for quality in JPEG_QUALITIES:
        a, b = jpeg(x, quality), jpeg(x, quality)
        assert np.array_equal(a, b) and a.shape == x.shape and a.dtype == np.float32
        errors.append(float(np.abs(a - x).mean()))
    assert errors[0] > 0 and errors == sorted(errors)  # 95 < 85 < 75
    rgb = np.repeat(x, 3, axis=1)
    assert jpeg(rgb, 75).shape == rgb.shape


@pytest.mark.parametrize("channels", [1, 3])
def test_jpeg_of_a_stack_is_pil_image_by_image(channels: int) -> None:
    """The stack's rounding and scaling are array operations: each image comes out as PIL makes
    it alone (off-grid values and values outside [0, 1] included)."""
    import io

    from PIL import Image

    rng = np.random.default_rng(0)
    x = (rng.random((6, channels, 24, 40), dtype=np.float32) * 1.2 - 0.1).astype(np.float32)
    out = jpeg(x, 85)
    for image, got in zip(x, out, strict=True):
        pixels = np.rint(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
        pil = Image.fromarray(pixels[0] if channels == 1 else pixels.transpose(1, 2, 0))
        buffer = io.BytesIO()
        pil.save(buffer, format="JPEG", quality=85, subsampling=0)
        decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())), dtype=np.float32) / 255.0
        assert np.array_equal(got, decoded[None] if channels == 1 else decoded.transpose(2, 0, 1))


class _Shift(FixedEpsilonAttack):
    """Fixed-epsilon test attack: adds +eps (fractional levels) to the first half of the samples."""

    library = "test"

    def prepare(self, model, input_shape, num_classes, *, device=None):
        return None

    def run(self, handle, x, y, eps):
        out = x.copy()
        out[: len(x) // 2] = np.clip(out[: len(x) // 2] + eps, 0, 1)
        return out


def test_variants_score_every_image_as_a_naive_loop_would() -> None:
    """The de-duplicated scoring equals scoring every variant image from scratch."""
    model = _tiny_model()
    x = _grid_images(16)
    y = predict(model, x)  # all clean-correct
    result = _Shift()(model, x, y, (0.7 / 255, 3.4 / 255, 20 / 255), seed=0)
    scored = variants(model, result, "test")
    assert [(v.quantized, v.postprocess) for v in scored] == list(VARIANTS)
    for v in scored:
        for k, eps in enumerate(result.epsilons):
            images = result.x_adv[k] if v.quantized == "float" else quantize(result.x_adv[k], x, float(eps), "linf")
            clean = x
            if v.postprocess != "none":
                quality = int(v.postprocess[4:])
                images, clean = jpeg(images, quality), jpeg(x, quality)
            assert (predict(model, images) == v.adv_pred[k]).all(), (v.quantized, v.postprocess, k)
            assert (predict(model, clean) == v.clean_pred).all()
    assert (scored[1].linf <= result.epsilons[:, None] + 1e-6).all()


def test_an_8bit_image_outside_its_budget_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    import bench.run.postprocess as post

    model = _tiny_model()
    x = _grid_images(8)
    result = _Shift()(model, x, predict(model, x), (2 / 255,), seed=0)
    monkeypatch.setattr(post, "quantize", lambda adv, x, eps, norm: np.clip(x + 3 / 255, 0, 1).astype(np.float32))
    with pytest.raises(AttackBudgetError, match="8-bit adversarial image left its budget"):
        post.variants(model, result, "test")


class _Halfway(MinimumNormAttack):
    """Minimum-norm test attack: pushes every image towards the opposite class's mean image."""

    library = "test"
    norm = "l2"

    def prepare(self, model, input_shape, num_classes, *, device=None):
        return model

    def run_unbounded(self, handle, x, y):
        out = x.copy()
        for i in range(len(x)):  # bisection along the line to a constant image: smallest flip found
            target = np.full_like(x[i], 1.0 if x[i].mean() < 0.5 else 0.0)
            lo, hi = 0.0, 1.0
            if predict(handle, (x[i] + hi * (target - x[i]))[None])[0] == y[i]:
                continue  # no adversarial example on this line
            for _ in range(12):
                mid = (lo + hi) / 2
                flipped = predict(handle, (x[i] + mid * (target - x[i]))[None])[0] != y[i]
                lo, hi = (lo, mid) if flipped else (mid, hi)
            out[i] = x[i] + hi * (target - x[i])
        return out


def test_minimum_norm_attack_runs_once_and_gives_every_epsilon_from_the_smallest_perturbation() -> None:
    model = _tiny_model()
    x = _grid_images(16)
    y = predict(model, x)
    y[:2] = 1 - y[:2]  # two samples misclassified from the start
    epsilons = (0.5, 1.0, 2.0, 4.0, 8.0)
    result = _Halfway()(model, x, y, epsilons, seed=0)
    assert result.min_norm is not None and (result.min_norm[:2] == 0).all()
    assert result.attacked.tolist() == [14, 0, 0, 0, 0] and (result.seconds[1:] == 0).all()
    for k, eps in enumerate(result.epsilons):
        fooled = np.isfinite(result.min_norm) & (result.min_norm <= eps) & (result.clean_pred == y)
        assert ((~result.adv_correct[k] & (result.clean_pred == y)) == fooled).all()
        sizes = norms(result.x_adv[k] - x, "l2")
        assert within(sizes, eps).all()
        assert (predict(model, result.x_adv[k]) == result.adv_pred[k]).all()
    assert (np.diff(result.robust_accuracy) <= 0).all()
    assert np.isfinite(result.min_norm[2:]).any()
