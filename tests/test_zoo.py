"""The forensic zoo: every task builds, every detector trains on every compatible task."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bench.core.config import DataConfig, TrainingConfig
from bench.inputs.data import build_dataset
from bench.inputs.matrix import builtin_matrix_path, load_matrix
from bench.inputs.photos import builtin_source, folder_source
from bench.tasks import TASKS
from defenses import DEFENSES
from detectors import DETECTORS
from detectors._networks import is_network

# the tasks of the zoo profile (bench/inputs/matrices/zoo.toml): every registered task, resample both ways
ZOO_TASKS = [str(t) for t in load_matrix(builtin_matrix_path("zoo"), train_only=True).tasks]
TRAINABLE = [name for name in DETECTORS.names() if not is_network(name)]  # networks load a file: test_networks.py
SMALL = DataConfig(max_train_per_photo=20, max_eval_per_photo=10)


@pytest.fixture(scope="module")
def zoo_datasets() -> dict:
    """Every zoo task's dataset on the built-in photographs (slow: the manipulations run on whole photographs)."""
    return {t: build_dataset(TASKS.resolve(t), builtin_source(), SMALL, 0) for t in ZOO_TASKS}


@pytest.mark.parametrize("task", TASKS.names())
def test_every_task_makes_one_8bit_version_per_class_of_a_photograph(task: str) -> None:
    """Every registered task, on one small photograph: one whole-image version per class, 8-bit."""
    info = TASKS.entry(task).info
    rng = np.random.default_rng(0)
    shape = (96, 96) if info.channels == 1 else (96, 96, 3)
    image = rng.integers(0, 256, shape, dtype=np.uint8)
    built = TASKS.create(task, photos=("photo",))
    examples = built.examples("photo", image, np.random.default_rng(1))
    assert [label for label, _ in examples] == list(range(len(info.classes)))
    for label, version in examples:
        assert version.dtype == np.uint8 and version.ndim == image.ndim and version.shape[0] >= 48, (task, label)
    if built.pristine_class:
        assert examples[0][1] is image
        assert all(not np.array_equal(v[:64, :64], image[:64, :64]) for _, v in examples[1:]), task


def test_zoo_registers_at_least_8_tasks_and_5_detectors() -> None:
    assert len(TASKS.names()) >= 8 and {t.split("[")[0] for t in ZOO_TASKS} <= set(TASKS.names())
    assert {"bayar", "srm", "mfr", "bondi", "plain"} <= set(DETECTORS.names())


@pytest.mark.parametrize("task", ZOO_TASKS)
def test_task_dataset_is_split_by_photograph_with_every_class(zoo_datasets: dict, task: str) -> None:
    ds = zoo_datasets[task]
    info = TASKS.entry(TASKS.resolve(task).name).info
    k = len(info.classes)
    assert len(ds.info["classes"]) == k
    for split in ("train", "val", "test"):
        assert ds.x[split].shape[1:] == (info.channels, 64, 64)
        assert set(np.unique(ds.y[split])) == set(range(k))
    photos = {s: set(ds.source[s]) for s in ("train", "val", "test")}
    assert (
        not photos["train"] & photos["test"]
        and not photos["train"] & photos["val"]
        and not photos["val"] & photos["test"]
    )


def test_manipulations_change_the_pixels_they_claim(zoo_datasets: dict) -> None:
    ds = zoo_datasets["manipulation-id"]
    x, y = ds.x["test"].astype(int), ds.y["test"]
    pristine, noisy = x[y == 0], x[y == 3]
    diff = noisy - pristine
    assert 1.5 < diff.std() < 2.5  # sigma 2 grey levels, rounded and clipped
    assert ds.info["classes"] == ["pristine", "median5", "blur", "noise", "resample", "jpeg"]


def test_camera_sim_uses_colour_photographs_only(zoo_datasets: dict) -> None:
    ds = zoo_datasets["camera-sim"]
    assert len(ds.info["classes"]) >= 4
    gray = {"camera", "moon", "brick", "grass", "gravel", "coins", "cell", "clock_motion"}
    assert not gray & {p for s in ds.info["splits"].values() for p in s["photos"]}


def test_camera_sim_on_a_dresden_style_folder_is_camera_model_identification(tmp_path: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for model in ("Canon_Ixus70", "Nikon_D70"):
        (tmp_path / "imgs" / model).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 256, (100, 100, 3), dtype=np.uint8)).save(
                tmp_path / "imgs" / model / f"{i}.png"
            )
    ds = build_dataset(TASKS.resolve("camera-sim"), folder_source(tmp_path / "imgs"), DataConfig(train_stride=64), 0)
    assert ds.info["classes"] == ["Canon_Ixus70", "Nikon_D70"]
    for split in ("train", "val", "test"):
        assert set(ds.y[split]) == {0, 1}  # stratified: every camera model in every split
        for photo, label in zip(ds.source[split], ds.y[split]):
            assert photo.startswith(ds.info["classes"][label])


@pytest.mark.parametrize("detector", TRAINABLE)
def test_parameter_count_in_the_description_is_true(detector: str) -> None:
    model = DETECTORS.create(detector, in_channels=1, num_classes=2)
    count = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert DETECTORS.entry(detector).info.parameters == count


@pytest.mark.slow
@pytest.mark.parametrize("task", ZOO_TASKS)
@pytest.mark.parametrize("detector", TRAINABLE)
def test_every_detector_trains_on_every_compatible_task(zoo_datasets: dict, task: str, detector: str) -> None:
    from bench.run.training import train

    ds = zoo_datasets[task]
    channels = ds.x["train"].shape[1]
    if channels not in DETECTORS.entry(detector).info.channels:
        pytest.skip(f"{detector} does not accept {channels} channels")
    config = TrainingConfig(epochs=1, batch_size=32, max_train_patches=96)
    model, meta = train(DETECTORS.resolve(detector), ds, DEFENSES.resolve("none"), config, seed=0)
    assert meta.parameters > 0 and 0.0 <= meta.test_accuracy <= 1.0
    out = model(torch.from_numpy(ds.floats("test")[:4]))
    assert out.shape == (4, len(ds.info["classes"])) and torch.isfinite(out).all()
    if detector == "bayar":  # the constrained layer keeps its constraint through training
        from detectors._layers import BayarConv2d

        w = next(m for m in model.modules() if isinstance(m, BayarConv2d)).weight
        centre = w[:, :, 2, 2].sum(dim=1)
        assert torch.allclose(centre, torch.full_like(centre, -1.0))
        assert torch.allclose(w.sum(dim=(1, 2, 3)) - centre, torch.ones_like(centre), atol=1e-5)


def test_mfr_front_end_passes_gradients_to_the_input() -> None:
    from detectors._layers import MedianResidual

    x = torch.rand(2, 1, 16, 16, requires_grad=True)
    residual = MedianResidual(3)(x)
    residual.sum().backward()
    assert x.grad is not None and (x.grad != 0).float().mean() > 0.5
    from scipy.ndimage import median_filter

    expected = (
        median_filter(x.detach().numpy()[0, 0], size=3, mode="mirror") - x.detach().numpy()[0, 0]
    )  # torch "reflect"
    assert np.allclose(residual.detach().numpy()[0, 0], expected, atol=1e-6)


def test_zoo_markdown() -> None:
    import pandas as pd

    from bench.core.schema import MODEL_COLUMNS
    from bench.studies.zoo import zoo_markdown

    rows = [
        {
            "task": t,
            "detector": d,
            "defense": "none",
            "test_accuracy": 0.9,
            "test_accuracy_low": 0.85,
            "test_accuracy_high": 0.94,
            "test_n": 100,
            "val_accuracy": 0.9,
            "parameters": 10,
            "epochs": 3,
            "train_seconds": 12.0,
            "from_cache": False,
            "model": "k",
            "error": "",
        }
        for t in ("median3", "blur")
        for d in ("bayar[scale=0.25]", "srm")
    ]
    table = zoo_markdown(pd.DataFrame(rows, columns=list(MODEL_COLUMNS)))
    assert "| `median3` (100) | 0.900 [0.850, 0.940] 12 s | 0.900 [0.850, 0.940] 12 s |" in table
