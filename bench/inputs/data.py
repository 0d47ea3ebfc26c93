"""The patch datasets built from pristine photographs (bench/inputs/photos.py).

Splits are by source photograph: no photograph gives patches to two splits. Building is a pure
function of the task, the photographs, the settings and the seed - the dataset stage of the
run's keys (bench/run/plan.py); the run's store caches the result under its key.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bench.core.errors import BenchError
from bench.tasks import TASKS

if TYPE_CHECKING:
    from bench.core.config import DataConfig
    from bench.core.registry import Spec
    from bench.inputs.photos import ImageSource

SPLITS = ("train", "val", "test")


def load_image(path: Path, channels: int) -> np.ndarray:
    """Read an image as uint8, (H, W) for channels=1 (ITU-R 601 luma) or (H, W, 3) for 3."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as opened:
            image: Image.Image = opened
            if image.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit PGM/TIFF: scale to 8 bits
                arr = np.asarray(image, dtype=np.float64)
                image = Image.fromarray(np.round(arr * 255.0 / max(arr.max(), 1.0)).astype(np.uint8))
            return np.asarray(image.convert("L" if channels == 1 else "RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as err:
        raise BenchError(f"cannot read image {path}: {err}") from None


@dataclass
class Dataset:
    """Patches for one task: per split uint8 images (N, C, H, W), labels, source photo, location."""

    key: str
    x: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    source: dict[str, np.ndarray]
    location: dict[str, np.ndarray]
    info: dict[str, Any]

    def floats(self, split: str) -> np.ndarray:
        """Images of a split as float32 in [0, 1]."""
        return self.x[split].astype(np.float32) / np.float32(255.0)


def split_photos(
    names: list[str], config: DataConfig, seed: int, labels: Mapping[str, int] | None = None
) -> dict[str, list[str]]:
    """Assign whole photographs to train/val/test with a seeded permutation of sorted names.

    With ``labels`` (one class per photograph, e.g. camera models) the split is made within
    each class, so every class has photographs in every split.
    """
    if labels is not None:
        out: dict[str, list[str]] = {"test": [], "val": [], "train": []}
        for label in sorted(set(labels.values())):
            group = [n for n in names if labels[n] == label]
            for split, part in split_photos(group, config, seed).items():
                out[split] += part
        return {k: sorted(v) for k, v in out.items()}
    names = sorted(names)
    order = [names[i] for i in np.random.default_rng(seed).permutation(len(names))]
    n_test = max(1, round(len(names) * config.test_fraction))
    n_val = max(1, round(len(names) * config.val_fraction))
    if n_test + n_val >= len(names):
        raise BenchError(
            f"data: {len(names)} photographs cannot give train, val and test at val_fraction={config.val_fraction} and test_fraction={config.test_fraction}"
        )
    return {
        "test": sorted(order[:n_test]),
        "val": sorted(order[n_test : n_test + n_val]),
        "train": sorted(order[n_test + n_val :]),
    }


def is_colour(path: Path) -> bool:
    """True when an image has colour (not grey stored in three channels)."""
    rgb = load_image(path, 3).astype(np.int16)
    return bool(np.abs(rgb - rgb.mean(axis=2, keepdims=True)).max() > 2)


def build_dataset(task_spec: Spec, source: ImageSource, config: DataConfig, seed: int, *, key: str = "") -> Dataset:
    """Build the patch dataset of a task on a photograph source (``key``: its cache key, recorded)."""
    paths = dict(source.files)
    task = TASKS.create(task_spec, photos=tuple(paths))
    if task.colour_only:
        paths = {n: p for n, p in paths.items() if is_colour(p)}
    splits = split_photos(list(paths), config, seed, task.photo_labels)
    out: dict[str, dict[str, np.ndarray]] = {k: {} for k in ("x", "y", "source", "location")}
    info: dict[str, Any] = {"task": str(task_spec), "images": source.label, "classes": list(task.classes), "splits": {}}
    for split, photos in splits.items():
        stride = config.train_stride if split == "train" else config.eval_stride
        cap = config.max_train_per_photo if split == "train" else config.max_eval_per_photo
        total_cap = config.max_train_locations if split == "train" else config.max_eval_locations
        groups: list[tuple[str, tuple[int, int], list[tuple[int, np.ndarray]]]] = []
        dropped = candidates = 0
        for photo in photos:
            rng = np.random.default_rng([seed, zlib.crc32(photo.encode())])
            examples = task.examples(photo, load_image(paths[photo], task.channels), rng)
            loc = _locations([img for _, img in examples], config.patch, stride, config.min_changed)
            candidates += loc.n_candidates
            dropped += loc.n_candidates - len(loc.kept)
            kept = loc.kept
            if len(kept) > cap:
                kept = kept[np.sort(rng.choice(len(kept), cap, replace=False))]
            p = config.patch
            for i, j in kept:
                groups.append((photo, (i, j), [(label, _chw(img[i : i + p, j : j + p])) for label, img in examples]))
        if len(groups) > total_cap:
            rng = np.random.default_rng([seed, zlib.crc32(split.encode())])
            groups = [groups[k] for k in np.sort(rng.choice(len(groups), total_cap, replace=False))]
        if not groups:
            raise BenchError(
                f"data: no usable {config.patch}x{config.patch} patches in the {split} photographs {photos}"
            )
        # A manipulation task gives one patch per class at every location (the same scene,
        # differently processed), so a detector must find the processing traces, not the content.
        out["x"][split] = np.stack([patch for _, _, ex in groups for _, patch in ex])
        out["y"][split] = np.array([label for _, _, ex in groups for label, _ in ex], dtype=np.int64)
        out["source"][split] = np.array([photo for photo, _, ex in groups for _ in ex])
        out["location"][split] = np.array([loc for _, loc, ex in groups for _ in ex], dtype=np.int32)
        info["splits"][split] = {
            "photos": photos,
            "locations": len(groups),
            "patches": len(out["y"][split]),
            "candidate_locations": candidates,
            "dropped_unchanged": dropped,
            "class_counts": np.bincount(out["y"][split], minlength=len(task.classes)).tolist(),
        }
    return Dataset(key, info=info, **out)


@dataclass(frozen=True)
class _Locations:
    kept: np.ndarray
    n_candidates: int


def _locations(versions: list[np.ndarray], patch: int, stride: int, min_changed: float) -> _Locations:
    """Grid locations inside every version where each version differs from the first enough."""
    h = min(v.shape[0] for v in versions)
    w = min(v.shape[1] for v in versions)
    grid = np.array(
        [(i, j) for i in range(0, h - patch + 1, stride) for j in range(0, w - patch + 1, stride)], dtype=np.int64
    )
    if len(grid) == 0:
        return _Locations(grid.reshape(0, 2), 0)
    base = versions[0][:h, :w]
    keep = np.ones(len(grid), dtype=bool)
    for other in versions[1:]:
        changed = base != other[:h, :w]
        if changed.ndim == 3:
            changed = changed.any(axis=2)
        # summed-area table: share of changed pixels in every patch in O(1) each
        sat = np.pad(changed.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
        i, j = grid[:, 0], grid[:, 1]
        counts = sat[i + patch, j + patch] - sat[i, j + patch] - sat[i + patch, j] + sat[i, j]
        keep &= counts / float(patch * patch) >= min_changed
    return _Locations(grid[keep], len(grid))


def _chw(patch: np.ndarray) -> np.ndarray:
    return patch[None] if patch.ndim == 2 else np.moveaxis(patch, 2, 0)
