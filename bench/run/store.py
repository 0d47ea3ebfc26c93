"""The cache folder: every computed result stored under its content key (bench/run/plan.py).

Layout under the cache root (``results/.cache`` by default)::

    datasets/<key>.npz, <key>.json      patches of every split; the description (splits, counts)
    models/<key>.pt, <key>.json          weights (a state dict); metadata (written last)
    cells/<key>.rows.parquet             the cell's tidy rows (written last: marks completion)
    cells/<key>.samples.parquet          its per-sample rows
    cells/<key>.images.npz               its 8-bit images, for the cells that keep them
    probes/<key>.json                    a model's trust-flag probes
    transfer/<key>.npz                   a target model's scores of a source cell's images

Every file appears atomically (bench/core/cache.py), so an interrupted run leaves whole entries
or none. Failures are never stored. Nothing here computes a number.
"""

from __future__ import annotations

import dataclasses
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bench.core.cache import atomic_write, atomic_write_npz, atomic_write_text
from bench.inputs.data import SPLITS, Dataset
from bench.run.scoring import Scores
from bench.run.training import ModelMeta

if TYPE_CHECKING:
    from torch import nn

    from bench.run.plan import Cell

_PARTS = ("x", "y", "source", "location")


@dataclass(frozen=True)
class CellOutput:
    """What a finished cell stores: its tidy rows, per-sample rows and (some cells) its 8-bit images."""

    rows: pd.DataFrame
    samples: pd.DataFrame
    images: dict[str, np.ndarray] | None = None


class Store:
    """Read and write the cache entries of one cache folder."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # -- datasets ------------------------------------------------------------------------------
    def _dataset_path(self, key: str) -> Path:
        return self.root / "datasets" / f"{key}.npz"

    def dataset(self, key: str) -> Dataset | None:
        """A cached dataset, or None."""
        path = self._dataset_path(key)
        if not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as z:
            parts = {k: {s: z[f"{s}_{k}"] for s in SPLITS} for k in _PARTS}
            return Dataset(key, info=json.loads(str(z["info"])), **parts)

    def put_dataset(self, dataset: Dataset) -> None:
        """Store a dataset (the patches, then its description)."""
        arrays = {f"{s}_{k}": getattr(dataset, k)[s] for s in SPLITS for k in _PARTS}
        arrays["info"] = np.array(json.dumps(dataset.info))
        path = self._dataset_path(dataset.key)
        atomic_write_npz(path, arrays)
        atomic_write_text(path.with_suffix(".json"), json.dumps(dataset.info, indent=1))

    def dataset_info(self, key: str) -> dict[str, Any] | None:
        """The description of a cached dataset (splits, photos, counts) without its patches."""
        path = self._dataset_path(key).with_suffix(".json")
        return json.loads(path.read_text()) if path.is_file() else None

    # -- models --------------------------------------------------------------------------------
    def _model_paths(self, key: str) -> tuple[Path, Path]:
        return self.root / "models" / f"{key}.pt", self.root / "models" / f"{key}.json"

    def model_meta(self, key: str) -> ModelMeta | None:
        """Metadata of a cached model without loading its weights (None when not cached)."""
        weights, meta = self._model_paths(key)
        if not (weights.is_file() and meta.is_file()):
            return None
        return ModelMeta(**json.loads(meta.read_text()))

    def load_weights(self, key: str, model: nn.Module) -> nn.Module:
        """Load a cached model's weights into ``model`` (built by the caller) and set eval mode."""
        import torch

        weights, _ = self._model_paths(key)
        model.load_state_dict(torch.load(weights, weights_only=True))
        return model.eval()

    def put_model(self, key: str, model: nn.Module, meta: ModelMeta) -> None:
        """Store a trained model: the weights, then the metadata (which marks completion)."""
        import torch

        weights, meta_path = self._model_paths(key)
        buffer = io.BytesIO()
        torch.save(model.state_dict(), buffer)
        atomic_write(weights, lambda f: f.write(buffer.getvalue()))
        atomic_write_text(meta_path, json.dumps(dataclasses.asdict(meta), indent=1))

    # -- cells ---------------------------------------------------------------------------------
    def _cell_paths(self, key: str) -> tuple[Path, Path, Path]:
        base = self.root / "cells" / key
        return base.with_suffix(".rows.parquet"), base.with_suffix(".samples.parquet"), base.with_suffix(".images.npz")

    def has_cell(self, cell: Cell) -> bool:
        """Whether every file of a cell is stored (its images too, for the cells that keep them)."""
        rows, samples, images = self._cell_paths(cell.key)
        return rows.is_file() and samples.is_file() and (images.is_file() or not cell.keeps_images)

    def cell(self, cell: Cell) -> CellOutput | None:
        """A stored cell's rows and per-sample rows (the images are read by :meth:`cell_images`)."""
        if not self.has_cell(cell):
            return None
        rows, samples, _ = self._cell_paths(cell.key)
        return CellOutput(pd.read_parquet(rows), pd.read_parquet(samples))

    def put_cell(self, cell: Cell, output: CellOutput) -> None:
        """Store a finished cell; the rows file is written last and marks completion."""
        rows, samples, images = self._cell_paths(cell.key)
        if output.images is not None:
            atomic_write_npz(images, output.images)
        atomic_write(samples, lambda f: output.samples.to_parquet(f, index=False))
        atomic_write(rows, lambda f: output.rows.to_parquet(f, index=False))

    def has_cell_images(self, key: str) -> bool:
        return self._cell_paths(key)[2].is_file()

    def cell_images(self, key: str) -> dict[str, np.ndarray] | None:
        """A cell's kept 8-bit images (bench/run/cells.py, ``cell_images``), or None."""
        path = self._cell_paths(key)[2]
        if not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}

    # -- probes and transfer pairs -------------------------------------------------------------
    def probe(self, key: str) -> dict[str, Any] | None:
        """A model's cached probe numbers, or None."""
        path = self.root / "probes" / f"{key}.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def put_probe(self, key: str, numbers: dict[str, Any]) -> None:
        atomic_write_text(self.root / "probes" / f"{key}.json", json.dumps(numbers, indent=1))

    def pair(self, key: str) -> Scores | None:
        """A target model's cached scores of a source cell's images, or None."""
        path = self.root / "transfer" / f"{key}.npz"
        if not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as z:
            return Scores(**{f.name: z[f.name] for f in dataclasses.fields(Scores)})

    def put_pair(self, key: str, scores: Scores) -> None:
        atomic_write_npz(self.root / "transfer" / f"{key}.npz", dataclasses.asdict(scores))
