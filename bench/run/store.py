"""The cache folder: every computed result stored under its content key (bench/run/plan.py).

Layout under the cache root (``results/.cache`` by default)::

    datasets/<key>.npz, <key>.json      patches of every split; the description (splits, counts)
    models/<key>.pt, <key>.json          weights (a state dict); metadata
    cells/<key>.rows.parquet             the cell's tidy rows
    cells/<key>.samples.parquet          its per-sample rows
    cells/<key>.images.npz               its 8-bit images, for the cells that keep them
    probes/<key>.json                    a model's trust-flag probes
    transfer/<key>.npz                   a target model's scores of a source cell's images
    <folder>/<key>.manifest.json         every entry's files with their SHA-256 and size
    claims/<kind>-<key>.claim            held while a run computes a model, cell, probe or pair
    damaged/<folder>/<key>.<time>/       entries that failed verification, moved aside

Integrity: an entry is its files plus its manifest, written last, which marks it complete. A read
verifies the bytes it is about to parse against the manifest (size and SHA-256; the bytes hashed
are the bytes parsed). An entry that fails - a file flipped, truncated, emptied or missing, a
manifest that does not parse, content that does not load - is reported in one line, moved aside
into ``damaged/`` (never deleted) and reads as absent, so the run recomputes it: no number is ever
computed from a damaged entry. A model's weights and metadata are one entry, valid together or
not at all. Files without a manifest (an interrupted write, or a cache from before manifests) are
absent and overwritten. Every file appears atomically (bench/core/cache.py). Failures are never
stored. Nothing here computes a number.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bench.core.cache import atomic_write_bytes, atomic_write_text
from bench.core.claims import Claim
from bench.inputs.data import SPLITS, Dataset
from bench.run.scoring import Scores
from bench.run.training import ModelMeta

if TYPE_CHECKING:
    from torch import nn

    from bench.run.plan import Cell

_PARTS = ("x", "y", "source", "location")
_KIND = {"datasets": "dataset", "models": "model", "cells": "cell", "probes": "probe", "transfer": "transfer pair"}
_CELL_FILES = (".rows.parquet", ".samples.parquet")
_IMAGES = ".images.npz"


class Damaged(Exception):
    """A cache entry failed verification (the message says how)."""


@dataclass(frozen=True)
class CellOutput:
    """What a finished cell stores: its tidy rows, per-sample rows and (some cells) its 8-bit images."""

    rows: pd.DataFrame
    samples: pd.DataFrame
    images: dict[str, np.ndarray] | None = None


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    # numpy's stubs type savez_compressed's **kwds as if a name could be its allow_pickle argument
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def _npz(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _json_bytes(doc: Any) -> bytes:
    return json.dumps(doc, indent=1).encode()


class Store:
    """Read and write the verified cache entries of one cache folder.

    Args:
        root: the cache folder.
        warn: receives one line for every damaged entry moved aside (the CLI prints it).
    """

    def __init__(self, root: str | Path, *, warn: Callable[[str], None] | None = None) -> None:
        self.root = Path(root)
        self.warn = warn or (lambda _: None)
        self.damaged: list[str] = []  # the lines reported so far

    # -- entries: files + manifest ---------------------------------------------------------------
    def _path(self, folder: str, key: str, suffix: str) -> Path:
        return self.root / folder / f"{key}{suffix}"

    def _put(self, folder: str, key: str, files: dict[str, bytes]) -> None:
        """Write an entry's files, then its manifest (which marks the entry complete)."""
        self._path(folder, key, ".manifest.json").unlink(missing_ok=True)  # incomplete while rewritten
        for suffix, data in files.items():
            atomic_write_bytes(self._path(folder, key, suffix), data)
        manifest = {
            "key": key,
            "files": {s: {"bytes": len(d), "sha256": hashlib.sha256(d).hexdigest()} for s, d in files.items()},
        }
        atomic_write_text(self._path(folder, key, ".manifest.json"), json.dumps(manifest, indent=1, sort_keys=True))

    def _get(self, folder: str, key: str, suffixes: Iterable[str]) -> dict[str, bytes] | None:
        """The verified bytes of some of an entry's files; None when the entry is absent or damaged
        (then it has been moved aside and reported)."""
        manifest = self._path(folder, key, ".manifest.json")
        try:
            raw = manifest.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as err:  # a folder in its place, an I/O error: unusable like a damaged one
            self._set_aside(folder, key, f"manifest unreadable ({err.strerror})")
            return None
        try:
            try:
                listed = json.loads(raw)["files"]
                wanted = {s: (int(listed[s]["bytes"]), str(listed[s]["sha256"])) for s in suffixes}
            except (ValueError, KeyError, TypeError) as err:
                raise Damaged(f"manifest unreadable ({type(err).__name__})") from None
            out = {}
            for suffix, (size, digest) in wanted.items():
                try:
                    data = self._path(folder, key, suffix).read_bytes()
                except FileNotFoundError:
                    raise Damaged(f"{key}{suffix} is missing") from None
                except OSError as err:
                    raise Damaged(f"{key}{suffix} unreadable ({err.strerror})") from None
                if len(data) != size:
                    raise Damaged(f"{key}{suffix} has {len(data)} bytes, {size} were written")
                if hashlib.sha256(data).hexdigest() != digest:
                    raise Damaged(f"{key}{suffix} does not match its SHA-256")
                out[suffix] = data
        except Damaged as err:
            self._set_aside(folder, key, str(err))
            return None
        return out

    def _parse(self, folder: str, key: str, parse: Callable[[], Any]) -> Any:
        """Parse verified bytes; content that does not load is damage too (None)."""
        try:
            return parse()
        except Exception as err:  # noqa: BLE001 - whatever the parser raises, the entry is unusable
            self._set_aside(folder, key, f"does not load ({type(err).__name__}: {str(err)[:80]})")
            return None

    def _set_aside(self, folder: str, key: str, reason: str) -> None:
        """Move every file of a damaged entry into ``damaged/`` and report it in one line."""
        stamp = f"{time.strftime('%Y%m%dT%H%M%S')}.{os.getpid()}"
        target = self.root / "damaged" / folder / f"{key}.{stamp}"
        moved = 0
        for path in sorted((self.root / folder).glob(f"{key}.*")):
            if path.name.endswith(".tmp"):
                continue
            target.mkdir(parents=True, exist_ok=True)
            try:
                path.replace(target / path.name)
                moved += 1
            except FileNotFoundError:  # another run moved it first
                pass
        line = f"cache: damaged {_KIND[folder]} entry {key}: {reason}; moved to {target}; it is recomputed"
        self.damaged.append(line)
        self.warn(line)

    def claim(self, kind: str, key: str) -> Claim:
        """The claim a run holds while computing an entry (bench/core/claims.py)."""
        return Claim(self.root / "claims", f"{kind}-{key}")

    # -- datasets ------------------------------------------------------------------------------
    def dataset(self, key: str) -> Dataset | None:
        """A cached dataset, or None."""
        files = self._get("datasets", key, (".npz", ".json"))
        if files is None:
            return None

        def parse() -> Dataset:
            z = _npz(files[".npz"])
            parts = {k: {s: z[f"{s}_{k}"] for s in SPLITS} for k in _PARTS}
            return Dataset(key, info=json.loads(files[".json"]), **parts)

        dataset: Dataset | None = self._parse("datasets", key, parse)
        return dataset

    def put_dataset(self, dataset: Dataset) -> None:
        """Store a dataset: its patches and its description."""
        arrays = {f"{s}_{k}": getattr(dataset, k)[s] for s in SPLITS for k in _PARTS}
        self._put("datasets", dataset.key, {".npz": _npz_bytes(arrays), ".json": _json_bytes(dataset.info)})

    def dataset_info(self, key: str) -> dict[str, Any] | None:
        """The description of a cached dataset (splits, photos, counts); its patches are verified
        too, so that a run that needs no patches still notices a damaged dataset."""
        files = self._get("datasets", key, (".npz", ".json"))
        return None if files is None else self._parse("datasets", key, lambda: dict(json.loads(files[".json"])))

    # -- models --------------------------------------------------------------------------------
    def model_meta(self, key: str) -> ModelMeta | None:
        """Metadata of a cached model (None when not cached); its weights are verified with it."""
        files = self._get("models", key, (".pt", ".json"))
        if files is None:
            return None
        meta: ModelMeta | None = self._parse("models", key, lambda: ModelMeta(**json.loads(files[".json"])))
        return meta

    def load_weights(self, key: str, model: nn.Module) -> nn.Module | None:
        """Load a cached model's verified weights into ``model`` (built by the caller) in eval mode;
        None when the entry is absent or damaged."""
        import torch

        files = self._get("models", key, (".pt", ".json"))
        if files is None:
            return None
        state = self._parse("models", key, lambda: torch.load(io.BytesIO(files[".pt"]), weights_only=True))
        if state is None:
            return None
        model.load_state_dict(state)
        return model.eval()

    def put_model(self, key: str, model: nn.Module, meta: ModelMeta) -> None:
        """Store a trained model: weights and metadata, one entry."""
        import torch

        buffer = io.BytesIO()
        torch.save(model.state_dict(), buffer)
        self._put("models", key, {".pt": buffer.getvalue(), ".json": _json_bytes(dataclasses.asdict(meta))})

    # -- cells ---------------------------------------------------------------------------------
    def cell(self, cell: Cell) -> CellOutput | None:
        """A stored cell's rows and per-sample rows (its images are verified too, for the cells
        that keep them, and read by :meth:`cell_images`)."""
        files = self._get("cells", cell.key, (*_CELL_FILES, *((_IMAGES,) if cell.keeps_images else ())))
        if files is None:
            return None

        def parse() -> CellOutput:
            if cell.keeps_images:
                _npz(files[_IMAGES])
            return CellOutput(
                pd.read_parquet(io.BytesIO(files[".rows.parquet"])),
                pd.read_parquet(io.BytesIO(files[".samples.parquet"])),
            )

        output: CellOutput | None = self._parse("cells", cell.key, parse)
        return output

    def put_cell(self, cell: Cell, output: CellOutput) -> None:
        """Store a finished cell (rows, per-sample rows and its images, if it keeps them)."""
        files = {".rows.parquet": _parquet_bytes(output.rows), ".samples.parquet": _parquet_bytes(output.samples)}
        if output.images is not None:
            files[_IMAGES] = _npz_bytes(output.images)
        self._put("cells", cell.key, files)

    def cell_images(self, key: str) -> dict[str, np.ndarray] | None:
        """A cell's kept 8-bit images (bench/run/cells.py, ``cell_images``), or None."""
        files = self._get("cells", key, (_IMAGES,))
        if files is None:
            return None
        images: dict[str, np.ndarray] | None = self._parse("cells", key, lambda: _npz(files[_IMAGES]))
        return images

    # -- probes and transfer pairs -------------------------------------------------------------
    def probe(self, key: str) -> dict[str, Any] | None:
        """A model's cached probe numbers, or None."""
        files = self._get("probes", key, (".json",))
        return None if files is None else self._parse("probes", key, lambda: dict(json.loads(files[".json"])))

    def put_probe(self, key: str, numbers: dict[str, Any]) -> None:
        self._put("probes", key, {".json": _json_bytes(numbers)})

    def pair(self, key: str) -> Scores | None:
        """A target model's cached scores of a source cell's images, or None."""
        files = self._get("transfer", key, (".npz",))
        if files is None:
            return None

        def parse() -> Scores:
            z = _npz(files[".npz"])
            return Scores(**{f.name: z[f.name] for f in dataclasses.fields(Scores)})

        scores: Scores | None = self._parse("transfer", key, parse)
        return scores

    def put_pair(self, key: str, scores: Scores) -> None:
        self._put("transfer", key, {".npz": _npz_bytes(dataclasses.asdict(scores))})
