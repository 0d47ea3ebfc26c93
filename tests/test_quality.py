"""PSNR and SSIM columns: scikit-image's values, per sample and as per-row means over the flipped patches.

The quick tests check the cell computation against scikit-image called directly, image by image,
on a sweep of a test attack (float and 8-bit images, JPEG rows carrying the 8-bit image's values,
unchanged images at inf and 1); the smoke run's test checks the written tables against
scikit-image on the kept 8-bit images of its examples file.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from bench.attacks import ATTACKS
from bench.attacks.base import quantize
from bench.core.columns import CELL_COLUMNS, SAMPLE_COLUMNS
from bench.core.inference import predict
from bench.core.schema import MATRIX_COLUMNS
from bench.run.cells import cell_tables
from bench.run.postprocess import VARIANTS, variants
from bench.run.quality import psnr_ssim
from tests.test_postprocess import _grid_images, _Shift


def _skimage(adv: np.ndarray, clean: np.ndarray) -> tuple[float, float]:
    """scikit-image on one (C, H, W) pair, as a user would call it."""
    a, c = adv.astype(np.float64), clean.astype(np.float64)
    if a.shape[0] == 1:
        return peak_signal_noise_ratio(c, a, data_range=1.0), structural_similarity(c[0], a[0], data_range=1.0)
    return peak_signal_noise_ratio(c, a, data_range=1.0), structural_similarity(c, a, data_range=1.0, channel_axis=0)


def test_the_columns_are_in_the_schemas() -> None:
    for column in ("psnr_mean", "ssim_mean"):
        assert CELL_COLUMNS[column] == "float64" and column in MATRIX_COLUMNS
    for column in ("psnr", "ssim"):
        assert SAMPLE_COLUMNS[column] == "float64"


@pytest.mark.parametrize("channels", [1, 3])
def test_psnr_ssim_are_scikit_images(channels: int) -> None:
    rng = np.random.default_rng(channels)
    clean = (rng.integers(0, 256, size=(channels, 32, 32)) / 255.0).astype(np.float32)
    adv = np.clip(clean + rng.uniform(-6 / 255, 6 / 255, size=clean.shape), 0, 1).astype(np.float32)
    psnr, ssim = psnr_ssim(adv, clean)
    assert (psnr, ssim) == _skimage(adv, clean)
    mse = float(((adv.astype(np.float64) - clean) ** 2).mean())
    assert psnr == pytest.approx(10 * np.log10(1 / mse), rel=1e-12)
    assert 0 < ssim < 1
    assert psnr_ssim(clean, clean) == (float("inf"), 1.0)


def _brightness_model(x: np.ndarray) -> torch.nn.Module:
    """Class 1 when a patch's mean is above the median of ``x``'s means: brightening flips class 0."""
    pixels = int(np.prod(x.shape[1:]))
    linear = torch.nn.Linear(pixels, 2)
    with torch.no_grad():
        linear.weight.zero_()
        linear.weight[1] = 1.0 / pixels
        linear.bias.zero_()
        linear.bias[1] = -float(np.median(x.reshape(len(x), -1).mean(axis=1)))
    return torch.nn.Sequential(torch.nn.Flatten(), linear).eval()


def _sweep() -> tuple[Any, Any, list[Any]]:
    x = _grid_images(16)
    model = _brightness_model(x)
    y = predict(model, x)  # all clean-correct
    result = _Shift()(model, x, y, (0.7 / 255, 3.4 / 255, 20 / 255), seed=0)
    return model, result, variants(model, result, "test")


def test_every_variant_has_scikit_images_values_on_its_images() -> None:
    _, result, scored = _sweep()
    x = result.x
    assert [(v.quantized, v.postprocess) for v in scored] == list(VARIANTS)
    eight_bit = scored[1]
    for v in scored:
        for k, eps in enumerate(result.epsilons):
            # JPEG rows measure the 8-bit image before compression, as their linf / l2 do
            images = result.x_adv[k] if v.quantized == "float" else quantize(result.x_adv[k], x, float(eps), "linf")
            for i in range(len(x)):
                if np.array_equal(images[i], x[i]):
                    assert v.psnr[k, i] == np.inf and v.ssim[k, i] == 1.0
                else:
                    assert (v.psnr[k, i], v.ssim[k, i]) == _skimage(images[i], x[i]), (v.quantized, k, i)
        if v.postprocess != "none":
            assert np.array_equal(v.psnr, eight_bit.psnr) and np.array_equal(v.ssim, eight_bit.ssim)
    unchanged = ~(result.x_adv[-1] != x).reshape(len(x), -1).any(axis=1)
    assert unchanged.any() and (~unchanged).any()  # the test attack leaves half the samples alone


def test_the_rows_average_over_the_flipped_patches() -> None:
    _, result, scored = _sweep()
    spec = ATTACKS.resolve("art.fgsm")
    job = SimpleNamespace(task="median3", detector="d", defense="none")
    cell = SimpleNamespace(model=job, gradient="exact", key="c", model_key="m")
    trained = SimpleNamespace(meta=SimpleNamespace(seconds=0.0))
    rows, samples = cell_tables(
        cell,  # type: ignore[arg-type]
        spec,
        result,
        scored,
        np.arange(len(result.y)),
        np.array(["photo"] * len(result.y)),
        trained,  # type: ignore[arg-type]
        0,
        ["pristine", "median3"],
        (0.7, 3.4, 20.0),
    )
    assert list(samples.columns) == list(SAMPLE_COLUMNS) and list(rows.columns) == list(CELL_COLUMNS)
    means = 0
    for row in rows.itertuples():
        these = samples[
            (samples["quantized"] == row.quantized)
            & (samples["postprocess"] == row.postprocess)
            & (samples["epsilon_255"] == row.epsilon_255)
        ]
        flipped = these[these["clean_correct"] & ~these["adv_correct"]]
        if flipped.empty:
            assert np.isnan(row.psnr_mean) and np.isnan(row.ssim_mean)
            continue
        assert np.isfinite(flipped["psnr"]).all()  # a flipped patch was changed
        assert row.psnr_mean == pytest.approx(flipped["psnr"].mean(), rel=1e-12)
        assert row.ssim_mean == pytest.approx(flipped["ssim"].mean(), rel=1e-12)
        means += 1
    assert means, "the test attack flipped nothing: the means were not checked"


def _floats(pixels: np.ndarray) -> np.ndarray:
    """8-bit pixels as the run holds them (float32, bench/inputs/data.py)."""
    return pixels.astype(np.float32) / np.float32(255.0)


def test_the_smoke_runs_tables_hold_scikit_images_values(smoke: Any) -> None:
    from bench.outputs.formats import load_results

    results = load_results(smoke.results_dir / "smoke")
    samples = results.read_samples()
    assert samples is not None
    table = results.table
    # on a few samples: the kept 8-bit images of the examples file against scikit-image
    examples = results.read_examples()
    assert examples
    checked = 0
    for entry in examples:
        rows = samples[
            (samples["detector"] == entry["detector"])
            & (samples["defense"] == entry["defense"])
            & (samples["attack"] == entry["attack"])
            & (samples["gradient"] == "exact")
            & (samples["quantized"] == "uint8")
            & (samples["postprocess"] == "none")
        ].set_index(["epsilon_255", "sample"])
        arrays = entry["arrays"]
        clean = _floats(arrays["x"])
        for k, eps in enumerate(arrays["epsilon_255"]):
            adv = _floats(arrays["adv"][k])
            for j, sample in enumerate(arrays["sample"]):
                row = rows.loc[(float(eps), int(sample))]
                if np.array_equal(adv[j], clean[j]):
                    assert row["psnr"] == np.inf and row["ssim"] == 1.0
                else:
                    psnr, ssim = _skimage(adv[j], clean[j])
                    assert row["psnr"] == pytest.approx(psnr, rel=1e-12), (entry["attack"], eps, sample)
                    assert row["ssim"] == pytest.approx(ssim, rel=1e-12), (entry["attack"], eps, sample)
                    checked += 1
    assert checked >= 4
    # every cell row's means are over its flipped patches; ensemble rows have none
    keys = ["cell", "quantized", "postprocess", "epsilon_255"]
    flipped = samples[samples["clean_correct"] & ~samples["adv_correct"] & np.isfinite(samples["psnr"])]
    means = flipped.groupby(keys, observed=True)[["psnr", "ssim"]].mean()
    cells = table[(table["attack"] != "ensemble") & (table["error"] == "")].set_index(keys)
    joined = cells[["psnr_mean", "ssim_mean"]].join(means, how="left")
    assert joined["psnr_mean"].notna().any()
    pd.testing.assert_series_equal(joined["psnr_mean"], joined["psnr"], check_names=False, rtol=1e-12)
    pd.testing.assert_series_equal(joined["ssim_mean"], joined["ssim"], check_names=False, rtol=1e-12)
    ensemble = table[table["attack"] == "ensemble"]
    assert len(ensemble) and ensemble["psnr_mean"].isna().all() and ensemble["ssim_mean"].isna().all()
