"""Every on-disk format of a results folder, read and written in one place.

A run's folder ``results/<profile>/`` holds ``matrix.csv`` / ``matrix.parquet`` (the tidy table),
``samples.parquet`` (per sample), ``models.csv``, ``probes.csv``, ``run.json`` (versions, host,
configuration, statistics), ``transfer.csv`` / ``transfer.parquet`` and ``examples.npz`` (the
gallery's images); ``python -m bench zoo`` writes only ``models.csv``, ``per_photo.csv``,
``zoo.md`` and ``run.json``, and ``python -m bench costs`` adds ``costs.csv`` /
``training-costs.csv``. :class:`ResultsFolder` writes them for a run (it is the executor's sink,
bench/run/execute.py) and :func:`load_results` reads them back for figures, tables, the report,
the regression check and the results pages; nothing downstream of a run re-runs an attack or
loads a model. Schemas are in bench/core/schema.py.

A *reference* (:func:`write_reference`, :func:`read_reference`) is the small committed summary of
a results folder that the Markdown results pages are generated from: ``<name>.csv`` (the matrix
rows without per-cell hashes and flag booleans) and ``<name>.json`` (run.json's fields and the
small tables), enough to render a page without the folder.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.core.cache import atomic_write, atomic_write_npz, atomic_write_text
from bench.core.errors import BenchError
from bench.core.schema import (
    ALL_SEEDS,
    DERIVED,
    DEVICE,
    FLAG_NAMES,
    MATRIX_COLUMNS,
    MODEL_COLUMNS,
    SAMPLE_COLUMNS,
    THREADS,
    TRAINING_SEED,
    TRANSFER_COLUMNS,
    fill_training_seed,
    headline,
)

# columns that older results folders lack, with the value every row of such a folder had
_DEFAULTS: dict[str, Any] = {
    "gradient": "exact",
    "quantized": "float",
    "postprocess": "none",
    "threat": "white-box",
    "minimum_norm": False,
    "error": "",
    # before training seeds (one training: `training_seed` is read from `seed`, _read_table)
    "robust_accuracy_seed_min": float("nan"),
    "robust_accuracy_seed_max": float("nan"),
    "seeds": 1,
    "flag_seed_sensitive": False,
    # before the image-quality columns (bench/run/quality.py): not measured
    "psnr_mean": float("nan"),
    "ssim_mean": float("nan"),
}
TRANSFER_FILES = ("transfer.csv", "transfer.parquet", "examples.npz")
PER_PHOTO, COSTS, TRAINING_COSTS, ZOO_TABLE = "per_photo.csv", "costs.csv", "training-costs.csv", "zoo.md"


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
        self.write_csv("models.csv", models)

    def write_csv(self, name: str, frame: pd.DataFrame) -> Path:
        """A table of the folder as CSV (models.csv, and the studies' PER_PHOTO, COSTS, TRAINING_COSTS)."""
        return self.write_text(name, frame.to_csv(index=False))

    def write_text(self, name: str, text: str) -> Path:
        """A text file of the folder (the zoo's Markdown table, ZOO_TABLE)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.folder / name, text)
        return self.folder / name

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


_EXAMPLE_KEYS = ("task", "detector", "defense", "attack", "classes")
_EXAMPLE_ARRAYS = ("x", "adv", "label", "sample", "epsilon_255", "clean_prob", "adv_prob", "clean_pred", "adv_pred")


def read_examples(path: Path) -> list[dict[str, Any]]:
    """The entries of an examples.npz: each index dict with its arrays under ``arrays``.

    BenchError (one line) when the file does not load or lacks what write_examples writes.
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            index = json.loads(str(z["index"]))
            out = []
            for i, entry in enumerate(index):
                prefix = f"{i}/"
                out.append({**entry, "arrays": {k[len(prefix) :]: z[k] for k in z.files if k.startswith(prefix)}})
    except Exception as err:  # noqa: BLE001 - any unreadable file is the same one-line error
        raise BenchError(f"{path}: unreadable ({type(err).__name__}); damaged, or not written by this suite") from None
    for i, entry in enumerate(out):
        missing = [k for k in _EXAMPLE_KEYS if k not in entry] + [
            a for a in _EXAMPLE_ARRAYS if a not in entry["arrays"]
        ]
        images = [entry["arrays"].get(a) for a in ("x", "adv")]
        if missing or any(a is None or a.dtype != np.uint8 for a in images):
            problem = f"lacks {', '.join(missing)}" if missing else "holds images that are not 8-bit"
            raise BenchError(f"{path}: example {i} {problem}; damaged, or not written by this suite")
    return out


# rates and their interval bounds: in [0, 1] wherever they are not NaN
_RATE = re.compile(r"(accuracy|_rate|^tpr|^tnr|_share)(_low|_high)?$")


def check_table(frame: pd.DataFrame, columns: dict[str, str], path: Path, required: tuple[str, ...]) -> None:
    """BenchError (one line) unless a table read from a results folder has the ``required``
    columns, numbers where its schema has numbers, and rates in [0, 1]."""
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise BenchError(f"{path}: lacks the columns {', '.join(missing)}; damaged, or not written by this suite")
    for column, dtype in columns.items():
        if column not in frame.columns or dtype not in ("float64", "int64", "Int64"):
            continue
        values = pd.to_numeric(frame[column], errors="coerce")
        if (values.isna() & frame[column].notna()).any():
            raise BenchError(f"{path}: column {column} holds values that are not numbers; damaged")
        if _RATE.search(column) and ((values < 0) | (values > 1)).any():
            raise BenchError(f"{path}: column {column} holds rates outside [0, 1]; damaged")


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
    per_photo: pd.DataFrame | None = None  # per_photo.csv (a zoo)
    costs: pd.DataFrame | None = None  # costs.csv
    training_costs: pd.DataFrame | None = None  # training-costs.csv
    reference: Path | None = None  # the reference CSV these results were read from (read_reference)

    @property
    def name(self) -> str:
        return str(self.run.get("profile") or self.folder.name)

    @property
    def headline(self) -> pd.DataFrame:
        """The matrix rows the figures, pages and tables show: across the training seeds where the
        run has several (bench/run/seeds.py), else every row."""
        return headline(self.table)

    @property
    def seeds(self) -> list[str]:
        """The training seeds of the run's models (one, unless the matrix lists several)."""
        if self.models is not None and TRAINING_SEED in self.models and len(self.models):
            return list(dict.fromkeys(self.models[TRAINING_SEED].astype(str)))
        column = self.table[TRAINING_SEED] if TRAINING_SEED in self.table else pd.Series(dtype=str)
        return list(dict.fromkeys(s for s in column.astype(str) if s != ALL_SEEDS))

    _samples: pd.DataFrame | None = None  # samples.parquet, read and checked by load_results
    _examples: list[dict[str, Any]] = field(default_factory=list)  # examples.npz, likewise

    def read_samples(self, *, unprocessed: bool = False, columns: tuple[str, ...] | None = None) -> pd.DataFrame | None:
        """samples.parquet, or None when the folder has none. ``unprocessed``: only the rows of
        the float images before any post-processing (a fifth of the table); ``columns``: only
        these columns (with the table's required ones). Either is read with a filter unless the
        whole table is in memory already: the whole table of the default matrix takes about
        370 MB in pandas, and pyarrow decodes every column it reads before filtering."""
        if self.samples is None:
            return None
        wanted = {*(columns or SAMPLE_COLUMNS), *_SAMPLES_REQUIRED}
        if (unprocessed or columns is not None) and self._samples is None:
            names = [c for c in _parquet_columns(self.samples) if c in wanted]  # the file's order
            kept = [("quantized", "==", "float"), ("postprocess", "==", "none")] if unprocessed else None
            schema = {c: SAMPLE_COLUMNS[c] for c in names if c in SAMPLE_COLUMNS}
            with contextlib.suppress(BenchError):  # a folder from before these columns: read whole, below
                return _read_table(
                    lambda path: pd.read_parquet(path, columns=names, filters=kept),
                    self.samples,
                    schema,
                    _SAMPLES_REQUIRED,
                )
        if self._samples is None:
            self._samples = _read_parquet(self.samples, SAMPLE_COLUMNS, _SAMPLES_REQUIRED)
        frame = self._samples
        if unprocessed and {"quantized", "postprocess"} <= set(frame.columns):
            frame = frame[(frame["quantized"] == "float") & (frame["postprocess"] == "none")]
        return frame if columns is None else frame[[c for c in frame.columns if c in wanted]]

    def read_examples(self) -> list[dict[str, Any]]:
        """examples.npz (empty when the folder has none)."""
        if not self._examples and self.examples is not None:
            self._examples = read_examples(self.examples)
        return self._examples


def load_results(folder: str | Path, *, require_matrix: bool = True, check_samples: bool = True) -> Results:
    """Read a results folder; BenchError (one line) when it holds no readable matrix table.

    With ``require_matrix=False`` a zoo folder (models.csv, no matrix.parquet) is read too, with
    an empty matrix table. ``check_samples=False``: samples.parquet and examples.npz are read
    when first asked for, not now (the run's own figures, drawn from the tables just written)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BenchError(f"{folder}: no such results folder (run `python -m bench run --matrix` first)")
    table_path = folder / "matrix.parquet"
    if table_path.is_file():
        table = _read_parquet(table_path, MATRIX_COLUMNS, _MATRIX_REQUIRED)
    elif not require_matrix and (folder / "models.csv").is_file():
        table = _empty(MATRIX_COLUMNS)
    elif require_matrix:
        raise BenchError(f"{folder}: no matrix.parquet; not a results folder of `python -m bench run`")
    else:
        raise BenchError(
            f"{folder}: neither matrix.parquet nor models.csv; not a results folder of `python -m bench run` or `zoo`"
        )
    for column, value in _DEFAULTS.items():
        if column not in table.columns:
            table[column] = value
    table["error"] = table["error"].fillna("").astype(str)
    models = _csv(folder / "models.csv", MODEL_COLUMNS, tuple(MODEL_COLUMNS))
    run = _run_json(folder / "run.json")
    transfer = None
    if (folder / "transfer.parquet").is_file():
        transfer = _read_parquet(folder / "transfer.parquet", TRANSFER_COLUMNS, tuple(TRANSFER_COLUMNS))
    seed = (run.get("configuration") or {}).get("seed")  # written before training seeds: the run's
    models = fill_training_seed(models, seed) if models is not None else None
    transfer = fill_training_seed(transfer, seed) if transfer is not None else None
    per_photo, costs, training = (_csv(folder / n, {}, _STUDY_COLUMNS[n]) for n in (PER_PHOTO, COSTS, TRAINING_COSTS))
    examples = folder / "examples.npz" if (folder / "examples.npz").is_file() else None
    samples = folder / "samples.parquet" if (folder / "samples.parquet").is_file() else None
    results = Results(folder, table, models, run, transfer, examples, samples, per_photo, costs, training)
    if check_samples:
        results.read_samples(), results.read_examples()  # every file checked before a command writes anything
    return results


_SAMPLES_REQUIRED = ("cell", "adv_correct")
# every column a run writes, but those older folders may lack (they get their defaults, _DEFAULTS)
_MATRIX_REQUIRED = tuple(c for c in MATRIX_COLUMNS if c not in _DEFAULTS)
# the columns the pages and the report read from the studies' tables
_STUDY_COLUMNS = {
    PER_PHOTO: ("task", "detector", "defense", "photo", "accuracy", "n"),
    COSTS: ("detector", "defense", "measure", "attack"),
    TRAINING_COSTS: ("task", "detector", "defense", "epochs", "ratio"),
}
# run.json: the type of every field a reader uses
_RUN_FIELDS = {
    "profile": str,
    "finished": str,
    "versions": dict,
    "host": dict,
    "configuration": dict,
    "matrix": dict,
    "attacks_run": dict,
    "images": dict,
    "datasets": dict,
    "stats": dict,
    "timings": dict,
    "flags": dict,
}


def _parquet_columns(path: Path) -> list[str]:
    """The column names of a parquet file, in its order (the footer only; [] when unreadable)."""
    import pyarrow.parquet as pq

    try:
        return list(pq.read_schema(path).names)
    except Exception:  # noqa: BLE001 - unreadable: the read that follows reports it in one line
        return []


def _read_parquet(path: Path, columns: dict[str, str], required: tuple[str, ...]) -> pd.DataFrame:
    return _read_table(pd.read_parquet, path, columns, required)


def _read_table(
    read: Callable[[Path], pd.DataFrame], path: Path, columns: dict[str, str], required: tuple[str, ...]
) -> pd.DataFrame:
    """A table of a results folder, read and checked (BenchError, one line, when unusable)."""
    try:
        frame = read(path)
    except Exception as err:  # noqa: BLE001 - any unreadable file is the same one-line error
        raise BenchError(f"{path}: unreadable ({type(err).__name__}); damaged, or not written by this suite") from None
    if DEVICE in columns and DEVICE not in frame.columns:  # written before the column existed: CPU runs
        frame[DEVICE] = "cpu"
    if THREADS in columns and THREADS not in frame.columns:  # written before the column existed: not recorded
        frame[THREADS] = pd.array([pd.NA] * len(frame), dtype="Int64")
    if TRAINING_SEED in columns:  # written before the column: one training, with the run's seed
        frame = fill_training_seed(frame)
    if "trained" in columns and "trained" not in frame.columns:  # before networks trained elsewhere
        frame["trained"] = True
    check_table(frame, columns, path, required)
    return frame


def _run_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        run = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise BenchError(f"{path}: unreadable ({type(err).__name__}); damaged, or not written by this suite") from None
    if not isinstance(run, dict):
        raise BenchError(f"{path}: not a JSON object; damaged, or not written by this suite")
    for name, kind in _RUN_FIELDS.items():
        if name in run and not isinstance(run[name], kind):
            raise BenchError(f"{path}: {name} is not a JSON {'object' if kind is dict else 'string'}; damaged")
    return run


def _csv(path: Path, columns: dict[str, str], required: tuple[str, ...]) -> pd.DataFrame | None:
    def read(p: Path) -> pd.DataFrame:
        return pd.read_csv(p, dtype={TRAINING_SEED: str})  # a seed's name, not a number ("all" across seeds)

    return _read_table(read, path, columns, required) if path.is_file() else None


def _empty(columns: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in columns.items()})


# --- references: the committed summary of a results folder (results/reference/<name>.csv + .json)

# per-cell hashes and the flag booleans (the `flags` column names the raised ones) stay out of it
REFERENCE_DROPPED = ("cell", "model", *(f"flag_{name}" for name in FLAG_NAMES))
REFERENCE_COLUMNS = [c for c in MATRIX_COLUMNS if c not in REFERENCE_DROPPED]
# columns a reference CSV must have; any other column it lacks gets its default
_REFERENCE_REQUIRED = ("task", "detector", "defense", "attack", "norm", "epsilon_255", "n")
# run.json fields copied into the reference JSON
RUN_FIELDS = (
    "configuration",
    "matrix",
    "versions",
    "host",
    "images",
    "datasets",
    "stats",
    "timings",
    "flags",
    "attacks_run",
    "finished",
)
# small tables of a folder copied into the reference JSON as records (when the folder has them)
_TABLES = ("models", "transfer", "per_photo", "costs", "training_costs")
_HASHES = {"transfer": ("source_cell", "target_model")}
_SCHEMAS = {"models": MODEL_COLUMNS, "transfer": TRANSFER_COLUMNS}
# rates are k/n with n up to a few thousand: 6 significant digits keep every count k = round(rate * n)
FLOAT_FORMAT = "%.6g"


def reference_name(results: Results) -> str:
    """The file name (without suffix) of a folder's reference: the results folder's name, i.e. the
    profile, or ``<profile>-<images>`` for a run on one's own photographs (so that it never
    overwrites the built-in data's reference)."""
    if results.reference is not None:
        return results.reference.stem
    return results.folder.resolve().name or results.name


def reference_texts(results: Results) -> tuple[str, str]:
    """The reference CSV and JSON of a results folder as text (deterministic: same folder, same
    bytes). With several training seeds the CSV keeps the rows across them (their range in
    columns, bench/run/seeds.py); each seed's models stay in the JSON."""
    table = results.headline
    csv = table[[c for c in REFERENCE_COLUMNS if c in table.columns]].to_csv(index=False, float_format=FLOAT_FORMAT)
    config = results.run.get("configuration") or {}
    meta: dict[str, Any] = {
        "profile": results.name,
        "description": str(config.get("description", "")) if isinstance(config, dict) else "",
        **{k: results.run[k] for k in RUN_FIELDS if k in results.run},
        "source": _source(results.folder),
    }
    for key in _TABLES:
        frame = getattr(results, key)
        if frame is None:
            continue
        if key in _SCHEMAS:  # in its schema, so that a reference read back writes the same bytes
            try:
                frame = _schema_frame(frame, _SCHEMAS[key])
            except (ValueError, TypeError) as err:
                raise BenchError(f"{results.folder}: {key} table not in its schema ({err})") from None
        meta[key] = _records(frame.drop(columns=[c for c in _HASHES.get(key, ()) if c in frame.columns]))
    return csv, json.dumps(_plain(meta), indent=2, sort_keys=True, allow_nan=False) + "\n"


def _source(folder: Path) -> str:
    """The results folder as written in a reference: relative to the working directory when inside it
    (the repository root), so that any spelling of the same folder gives the same bytes."""
    resolved = Path(folder).resolve()
    try:
        return resolved.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return resolved.as_posix()


def write_reference(results: Results, directory: Path) -> tuple[Path, Path]:
    """Write ``<directory>/<name>.csv`` and ``<name>.json`` (:func:`reference_name`) for a results folder."""
    csv, meta = reference_texts(results)
    name = reference_name(results)
    paths = (Path(directory) / f"{name}.csv", Path(directory) / f"{name}.json")
    atomic_write_text(paths[0], csv)
    atomic_write_text(paths[1], meta)
    return paths


def read_reference(csv_path: Path) -> Results:
    """The :class:`Results` of a reference CSV and the JSON beside it: the matrix table in its
    schema (hashes empty, flag booleans from ``flags``, absent columns at their defaults), models,
    transfer, per-photo and costs tables, and run.json's fields; BenchError when unreadable."""
    csv_path = Path(csv_path)
    json_path = csv_path.with_suffix(".json")
    try:
        csv, meta = csv_path.read_text(), json_path.read_text()
    except OSError as err:
        raise BenchError(
            f"{err.filename}: no such reference file (write one with `python -m bench report --markdown RESULTS_DIR`)"
        ) from None
    return parse_reference(csv, meta, csv_path)


def parse_reference(csv: str, meta: str, csv_path: Path) -> Results:
    """:func:`read_reference` from the texts of the two files (``csv_path`` names them in errors)."""
    try:
        info = json.loads(meta)
        if not isinstance(info, dict):
            raise TypeError("not a JSON object")
        table = _reference_table(pd.read_csv(io.StringIO(csv), dtype=str, keep_default_na=False))
        tables = {k: pd.DataFrame.from_records(info[k]) if k in info else None for k in _TABLES}
        for key, columns in _SCHEMAS.items():
            frame = tables[key]
            tables[key] = _schema_frame(frame, columns) if frame is not None else None
    except (ValueError, TypeError, KeyError) as err:
        raise BenchError(f"{csv_path}: not a reference table ({type(err).__name__}: {err})") from None
    run = {k: info[k] for k in ("profile", *RUN_FIELDS) if k in info}
    folder = Path(str(info.get("source") or csv_path.with_suffix("")))
    return Results(
        folder,
        table,
        tables["models"],
        run,
        tables["transfer"],
        per_photo=tables["per_photo"],
        costs=tables["costs"],
        training_costs=tables["training_costs"],
        reference=csv_path,
    )


def _reference_table(raw: pd.DataFrame) -> pd.DataFrame:
    """The matrix table of a reference CSV read as text: typed, hashes empty, flags restored."""
    missing = [c for c in _REFERENCE_REQUIRED if c not in raw.columns]
    if missing:
        raise ValueError(f"lacks columns {missing}")
    out: dict[str, Any] = {}
    for column, dtype in MATRIX_COLUMNS.items():
        if column not in raw.columns:
            continue
        text = raw[column].astype(str)
        if dtype == "string":
            out[column] = text
        elif dtype == "bool":
            values = text.map({"True": True, "False": False})
            if values.isna().any():
                raise ValueError(f"{column}: not true/false")
            out[column] = values.astype(bool)
        else:
            out[column] = pd.Series([float(v) if v else math.nan for v in text], index=raw.index, dtype="float64")
    table = pd.DataFrame(out, index=raw.index)
    if DEVICE not in raw.columns:  # a reference written before the column existed: a CPU run
        table[DEVICE] = "cpu"
    flags = table["flags"].fillna("") if "flags" in table else pd.Series("", index=table.index)
    for name in FLAG_NAMES:
        table[f"flag_{name}"] = flags.map(lambda text, name=name: name in text.split(",")).astype(bool)
    return _schema_frame(table, MATRIX_COLUMNS)


def _schema_frame(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """A frame in a schema, its absent columns filled with their defaults: the not-yet-computed
    values of :data:`DERIVED`, the values older folders had (:data:`_DEFAULTS`), else NaN, empty
    text, 0 or False; absent text and counts in present columns likewise."""
    frame = frame.copy()
    for column, dtype in columns.items():
        default = DERIVED.get(column, _DEFAULTS.get(column, _BY_DTYPE[dtype]))
        if column not in frame.columns:
            frame[column] = default
        elif dtype != "float64":
            frame[column] = frame[column].fillna(default)
    frame = fill_training_seed(frame) if TRAINING_SEED in columns else frame  # before the column
    return frame[list(columns)].astype(columns).reset_index(drop=True)


_BY_DTYPE: dict[str, Any] = {"float64": float("nan"), "string": "", "int64": 0, "bool": False, "Int64": pd.NA}


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A table as JSON records, floats to 6 significant digits (as the reference CSV)."""
    return [
        {str(k): float(FLOAT_FORMAT % v) if isinstance(v, float) and math.isfinite(v) else v for k, v in row.items()}
        for row in _plain(frame.to_dict(orient="records"))
    ]


def _plain(value: Any) -> Any:
    """``value`` with numpy and pandas scalars made Python ones and missing or non-finite numbers None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if value is pd.NA or value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return value


# --- the regression baseline (results/baseline/<profile>.csv and .json; bench/outputs/check.py compares)

BASELINE_KEYS = [
    "task",
    "detector",
    "defense",
    "training_seed",
    "attack",
    "gradient",
    "norm",
    "quantized",
    "postprocess",
    "epsilon_255",
]
BASELINE_COLUMNS = [
    *BASELINE_KEYS,
    "n",
    "seed",
    "clean_accuracy",
    "clean_accuracy_low",
    "clean_accuracy_high",
    "robust_accuracy",
    "robust_accuracy_low",
    "robust_accuracy_high",
]


def baseline_frame(results: Results) -> pd.DataFrame:
    """The baseline rows of a results folder (refused when a cell failed: a baseline must be whole);
    with several training seeds, each seed's rows and the rows across them (both compared,
    bench/outputs/check.py)."""
    table = results.table
    failed = table[table["error"] != ""]
    if len(failed):
        raise BenchError(
            f"{results.folder}: {failed['cell'].nunique() if 'cell' in failed else len(failed)} cells "
            "failed; fix them before writing a baseline"
        )
    frame = table[BASELINE_COLUMNS].sort_values(BASELINE_KEYS, kind="stable").reset_index(drop=True)
    if frame.duplicated(BASELINE_KEYS).any():
        raise BenchError(f"{results.folder}: duplicate cells in matrix.parquet")
    return frame


def write_baseline(results: Results | str | Path, path: str | Path) -> tuple[Path, Path]:
    """Write the baseline CSV and its JSON (configuration, versions) from a results folder."""
    results = results if isinstance(results, Results) else load_results(results)
    frame = baseline_frame(results)
    path = Path(path)
    meta = {
        "profile": results.name,
        "source": str(results.folder),
        "configuration": results.run.get("configuration", {}),
        "versions": results.run.get("versions", {}),
        "threads": results.run.get("host", {}).get("torch_threads"),  # the cells' (noted by check)
    }
    atomic_write_text(path, frame.to_csv(index=False))
    atomic_write_text(path.with_suffix(".json"), json.dumps(meta, indent=2) + "\n")
    return path, path.with_suffix(".json")


def read_baseline(path: str | Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A baseline CSV and its JSON (empty dict when absent); CannotCompare when unreadable."""
    path = Path(path)
    if not path.is_file():
        raise BenchError(f"--baseline {path}: no such file (write one with `python -m bench check --update`)")
    try:
        frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
    except Exception as err:  # noqa: BLE001 - any unreadable file is the same one-line error
        raise BenchError(f"--baseline {path}: not a CSV file ({type(err).__name__})") from None
    frame = fill_training_seed(frame)  # a baseline written before the column: one training
    missing = [c for c in BASELINE_COLUMNS if c not in frame.columns]
    if missing:
        raise BenchError(f"--baseline {path}: not a baseline; lacks columns {', '.join(missing)}")
    for c in BASELINE_KEYS[:-1]:
        frame[c] = frame[c].astype(str)
    meta_path = path.with_suffix(".json")
    try:
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    except json.JSONDecodeError:
        raise BenchError(f"{meta_path}: not valid JSON") from None
    return frame, meta
