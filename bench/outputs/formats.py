"""Every on-disk format of a results folder, read and written in one place.

A run's folder ``results/<profile>/`` holds ``matrix.csv`` / ``matrix.parquet`` (the tidy table),
``samples.parquet`` (per sample), ``models.csv``, ``probes.csv``, ``run.json`` (versions, host,
configuration, statistics), ``transfer.csv`` / ``transfer.parquet`` and ``examples.npz`` (the
gallery's images). :class:`ResultsFolder` writes them for a run (it is the executor's sink,
bench/run/execute.py) and :func:`load_results` reads them back for figures, tables, the report,
the regression check and the results pages; nothing downstream of a run re-runs an attack or
loads a model. Schemas are in bench/core/schema.py.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.core.cache import atomic_write, atomic_write_npz, atomic_write_text
from bench.core.errors import BenchError

# columns that older results folders lack, with the value every row of such a folder had
_DEFAULTS: dict[str, Any] = {
    "gradient": "exact",
    "quantized": "float",
    "postprocess": "none",
    "threat": "white-box",
    "minimum_norm": False,
    "error": "",
}
TRANSFER_FILES = ("transfer.csv", "transfer.parquet", "examples.npz")


def results_folder(results_dir: str | Path, profile: str, images: str | None = None) -> Path:
    """Where a run writes: ``RESULTS/<profile>``, or ``RESULTS/<profile>-<folder>`` on a user's photographs
    (so that a run on them never overwrites the built-in data's tables)."""
    name = profile if images is None else f"{profile}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', images)}"
    return Path(results_dir) / name


class ResultsFolder:
    """Writes a run's outputs into one folder (atomically, file by file)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def write_tables(
        self, table: pd.DataFrame, samples: pd.DataFrame, models: pd.DataFrame, probes: pd.DataFrame | None
    ) -> None:
        """matrix.csv / .parquet, samples.parquet, models.csv and (once probed) probes.csv."""
        out = self.folder
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "matrix.csv", table.to_csv(index=False))
        atomic_write(out / "matrix.parquet", lambda f: table.to_parquet(f, index=False))
        atomic_write(out / "samples.parquet", lambda f: samples.to_parquet(f, index=False))
        self.write_models(models)
        if probes is not None:
            atomic_write_text(out / "probes.csv", probes.to_csv(index=False))

    def write_models(self, models: pd.DataFrame) -> None:
        """models.csv."""
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.folder / "models.csv", models.to_csv(index=False))

    def write_transfer(self, table: pd.DataFrame | None, examples: list[dict[str, Any]]) -> None:
        """transfer.csv / .parquet and examples.npz; without a table, stale ones are removed."""
        out = self.folder
        if table is None:
            for name in TRANSFER_FILES:
                (out / name).unlink(missing_ok=True)
            return
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "transfer.csv", table.to_csv(index=False))
        atomic_write(out / "transfer.parquet", lambda f: table.to_parquet(f, index=False))
        write_examples(out / "examples.npz", examples)

    def write_run_info(self, info: dict[str, Any]) -> None:
        """run.json."""
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.folder / "run.json", json.dumps(info, indent=2, default=str) + "\n")


def write_examples(path: Path, entries: list[dict[str, Any]]) -> None:
    """examples.npz: an ``index`` (JSON list, one dict per source: task, detector, defense, attack,
    classes) and per source i the arrays ``{i}/x`` (uint8 K x C x H x W), ``{i}/adv`` (uint8
    E x K x C x H x W), ``{i}/label``, ``{i}/sample`` (test-split index), ``{i}/epsilon_255``,
    ``{i}/clean_prob``, ``{i}/adv_prob`` (the source detector's probability of the true class),
    ``{i}/clean_pred`` and ``{i}/adv_pred``."""
    arrays: dict[str, np.ndarray] = {}
    index = []
    for i, entry in enumerate(entries):
        index.append({k: entry[k] for k in ("task", "detector", "defense", "attack", "classes")})
        for name, value in entry["arrays"].items():
            arrays[f"{i}/{name}"] = value
    arrays["index"] = np.array(json.dumps(index))
    atomic_write_npz(path, arrays)


def read_examples(path: Path) -> list[dict[str, Any]]:
    """The entries of an examples.npz: each index dict with its arrays under ``arrays``."""
    with np.load(path, allow_pickle=False) as z:
        index = json.loads(str(z["index"]))
        out = []
        for i, entry in enumerate(index):
            prefix = f"{i}/"
            out.append({**entry, "arrays": {k[len(prefix) :]: z[k] for k in z.files if k.startswith(prefix)}})
        return out


@dataclass
class Results:
    """The files of one results folder (None / empty where the folder lacks them)."""

    folder: Path
    table: pd.DataFrame  # matrix.parquet
    models: pd.DataFrame | None = None  # models.csv
    run: dict[str, Any] = field(default_factory=dict)  # run.json
    transfer: pd.DataFrame | None = None  # transfer.parquet
    examples: Path | None = None  # examples.npz
    samples: Path | None = None  # samples.parquet (read on demand: it is large)

    @property
    def name(self) -> str:
        return str(self.run.get("profile") or self.folder.name)

    def read_samples(self) -> pd.DataFrame | None:
        """samples.parquet, or None when the folder has none."""
        return pd.read_parquet(self.samples) if self.samples is not None else None

    def read_examples(self) -> list[dict[str, Any]]:
        """examples.npz (empty when the folder has none)."""
        return read_examples(self.examples) if self.examples is not None else []


def load_results(folder: str | Path) -> Results:
    """Read a results folder; BenchError (one line) when it holds no readable matrix table."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BenchError(f"{folder}: no such results folder (run `python -m bench run --matrix` first)")
    table_path = folder / "matrix.parquet"
    if not table_path.is_file():
        raise BenchError(f"{folder}: no matrix.parquet; not a results folder of `python -m bench run`")
    try:
        table = pd.read_parquet(table_path)
    except Exception as err:  # noqa: BLE001 - any unreadable file is the same one-line error
        raise BenchError(f"{table_path}: unreadable ({type(err).__name__})") from None
    for column, value in _DEFAULTS.items():
        if column not in table.columns:
            table[column] = value
    table["error"] = table["error"].fillna("").astype(str)
    try:
        models = pd.read_csv(folder / "models.csv") if (folder / "models.csv").is_file() else None
        run = json.loads((folder / "run.json").read_text()) if (folder / "run.json").is_file() else {}
        transfer = pd.read_parquet(folder / "transfer.parquet") if (folder / "transfer.parquet").is_file() else None
    except Exception as err:  # noqa: BLE001 - likewise
        raise BenchError(
            f"{folder}: unreadable models.csv, run.json or transfer.parquet ({type(err).__name__})"
        ) from None
    examples = folder / "examples.npz" if (folder / "examples.npz").is_file() else None
    samples = folder / "samples.parquet" if (folder / "samples.parquet").is_file() else None
    return Results(folder, table, models, run, transfer, examples, samples)
