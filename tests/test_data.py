"""Datasets: built-in photographs, split by photograph, cache keys, user image folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.core.config import DataConfig
from bench.core.errors import BenchError
from bench.inputs.data import load_image, split_photos
from bench.inputs.photos import builtin_source, folder_source
from bench.run.execute import obtain_dataset
from bench.run.plan import dataset_key
from bench.run.store import Store
from bench.tasks import TASKS

MEDIAN3 = TASKS.resolve("median3")


def test_builtin_photographs_are_natural_and_bundled() -> None:
    source = builtin_source()
    names = [n for n, _ in source.files]
    assert len(names) >= 12
    assert {"camera", "astronaut", "coffee", "moon"} <= set(names)
    assert not any(bad in n for n in names for bad in ("chessboard", "logo", "text", "phantom", "page"))
    assert all(p.is_file() for _, p in source.files)


def test_split_is_by_photograph(smoke_dataset) -> None:
    photos = {s: set(smoke_dataset.source[s]) for s in ("train", "val", "test")}
    assert photos["train"] and photos["val"] and photos["test"]
    assert not photos["train"] & photos["val"]
    assert not photos["train"] & photos["test"]
    assert not photos["val"] & photos["test"]
    for split, info in smoke_dataset.info["splits"].items():
        assert set(info["photos"]) >= photos[split]


def test_every_location_gives_one_patch_per_class(smoke_dataset) -> None:
    for split in ("train", "val", "test"):
        x, y = smoke_dataset.x[split], smoke_dataset.y[split]
        assert x.dtype == np.uint8 and x.shape[1:] == (1, 64, 64)
        assert (y[0::2] == 0).all() and (y[1::2] == 1).all()
        assert (smoke_dataset.location[split][0::2] == smoke_dataset.location[split][1::2]).all()
        changed = (x[0::2] != x[1::2]).mean(axis=(1, 2, 3))
        assert changed.min() >= DataConfig().min_changed  # ambiguous (unchanged) locations were dropped


def test_median3_patches_are_median_filtered(smoke_dataset) -> None:
    from scipy.ndimage import median_filter

    pristine, filtered = smoke_dataset.x["test"][0, 0], smoke_dataset.x["test"][1, 0]
    # away from the patch border the filtered patch is the median filter of the pristine one
    assert (median_filter(pristine, size=3)[1:-1, 1:-1] == filtered[1:-1, 1:-1]).all()


def test_dataset_key_depends_on_every_input() -> None:
    source = builtin_source()
    base = dataset_key(MEDIAN3, source, DataConfig(), 0)
    assert base == dataset_key(MEDIAN3, source, DataConfig(), 0)
    assert base != dataset_key(MEDIAN3, source, DataConfig(), 1)
    assert base != dataset_key(MEDIAN3, source, DataConfig(patch=32), 0)
    fewer = type(source)(source.label, source.files[:-1])
    assert base != dataset_key(MEDIAN3, fewer, DataConfig(), 0)


def test_split_is_seeded_and_complete() -> None:
    names = [f"p{i}" for i in range(16)]
    a = split_photos(names, DataConfig(), seed=0)
    assert a == split_photos(list(reversed(names)), DataConfig(), seed=0)  # order of listing is irrelevant
    assert sorted(a["train"] + a["val"] + a["test"]) == sorted(names)
    assert (len(a["test"]), len(a["val"])) == (4, 2)
    assert a != split_photos(names, DataConfig(), seed=1)


def _write_images(folder: Path) -> None:
    rng = np.random.default_rng(0)
    smooth = lambda: (np.cumsum(rng.integers(-3, 4, size=(150, 170)), axis=1) % 256).astype(np.uint8)
    Image.fromarray(smooth()).save(folder / "a.png")
    Image.fromarray(smooth()).save(folder / "b.pgm")
    Image.fromarray(smooth()).save(folder / "c.bmp")
    Image.fromarray(smooth()).save(folder / "d.tif")
    Image.fromarray(np.stack([smooth()] * 3, axis=2)).save(folder / "e.jpg", quality=95)
    (folder / "sub").mkdir()
    Image.fromarray(smooth().astype(np.uint16) * 257).save(folder / "sub" / "f.png")  # 16-bit
    (folder / "notes.txt").write_text("not an image")


def test_user_folder_builds_the_same_task(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    _write_images(images)
    source = folder_source(images)
    assert [n for n, _ in source.files] == ["a", "b", "c", "d", "e", "sub/f"]
    assert load_image(images / "sub" / "f.png", 1).dtype == np.uint8
    config = DataConfig(train_stride=64)
    dataset = obtain_dataset(MEDIAN3, source, config, 0, Store(tmp_path / "cache"))
    assert (tmp_path / "cache" / "datasets" / f"{dataset.key}.npz").is_file()
    assert sum(len(dataset.y[s]) for s in ("train", "val", "test")) > 0
    again = obtain_dataset(MEDIAN3, source, config, 0, Store(tmp_path / "cache"))
    assert again.key == dataset.key and (again.x["test"] == dataset.x["test"]).all()


@pytest.mark.parametrize("content", ["missing", "empty", "two"])
def test_unusable_image_folders_are_refused(tmp_path: Path, content: str) -> None:
    folder = tmp_path / "imgs"
    if content != "missing":
        folder.mkdir()
    if content == "two":
        for name in ("a.png", "b.png"):
            Image.fromarray(np.zeros((80, 80), np.uint8)).save(folder / name)
    with pytest.raises(BenchError, match="--images"):
        folder_source(folder)
