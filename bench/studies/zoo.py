"""The forensic zoo: every detector trained on every task, summarised as a clean-accuracy table.

``python -m bench zoo`` trains (or fetches from the cache) the models of a train-only matrix
(``bench/inputs/matrices/zoo.toml`` by default) and writes into ``results/<profile>/``
``models.csv`` (tidy), ``per_photo.csv`` (accuracy on each test photograph), ``zoo.md`` (task x
detector) and ``run.json``.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from bench.core.cache import atomic_write_text
from bench.core.inference import predict
from bench.core.schema import MODEL_COLUMNS
from bench.outputs.formats import ResultsFolder
from bench.run.execute import Runner, obtain_dataset, obtain_model
from bench.run.plan import plan_models


def run_zoo(runner: Runner, folder: ResultsFolder) -> pd.DataFrame:
    """Train every model of the runner's matrix and write models.csv, per_photo.csv, zoo.md and run.json."""
    models = runner.train()
    folder.write_models(models)
    atomic_write_text(folder.folder / "per_photo.csv", per_photo_accuracy(runner).to_csv(index=False))
    atomic_write_text(folder.folder / "zoo.md", zoo_markdown(models) + "\n")
    folder.write_run_info(runner.run_info(runner.tables()))
    return models


def per_photo_accuracy(runner: Runner) -> pd.DataFrame:
    """Clean test accuracy of every stored model on each test photograph (where the errors are)."""
    matrix, store = runner.matrix, runner.store
    rows: list[dict[str, Any]] = []
    dataset = None
    for job in plan_models(matrix, runner.source):
        if dataset is None or dataset.key != job.dataset_key:
            dataset = obtain_dataset(job.task, runner.source, matrix.data, matrix.seed, store)
        ds = dataset
        trained = obtain_model(job, ds, matrix, store)
        correct = predict(trained.model, ds.floats("test")) == ds.y["test"]
        for photo in sorted(set(ds.source["test"])):
            mask = ds.source["test"] == photo
            rows.append(
                {
                    "task": str(job.task),
                    "detector": str(job.detector),
                    "defense": str(job.defense),
                    "photo": photo,
                    "n": int(mask.sum()),
                    "accuracy": float(correct[mask].mean()),
                }
            )
    return pd.DataFrame(rows)


def _short(name: str) -> str:
    return name.split("[", 1)[0]


def zoo_markdown(models: pd.DataFrame) -> str:
    """Task x detector table: clean test accuracy [95% Wilson interval], training seconds; parameter counts."""
    models = models[list(MODEL_COLUMNS)]
    detectors = list(dict.fromkeys(models["detector"]))
    tasks = list(dict.fromkeys(models["task"]))
    header = "| task (n test patches) | " + " | ".join(f"`{_short(d)}`" for d in detectors) + " |"
    lines = [header, "|---" * (len(detectors) + 1) + "|"]
    for task in tasks:
        rows = models[models["task"] == task].set_index("detector")
        n = int(rows["test_n"].max())
        cells = []
        for d in detectors:
            r = rows.loc[d]
            if r["error"]:
                cells.append("failed")
            else:
                cells.append(
                    f"{r['test_accuracy']:.3f} [{r['test_accuracy_low']:.3f}, {r['test_accuracy_high']:.3f}]"
                    f" {r['train_seconds']:.0f} s"
                )
        lines.append(f"| `{task}` ({n}) | " + " | ".join(cells) + " |")
    params = models.drop_duplicates("detector").set_index("detector")["parameters"]
    lines.append("| parameters (first task) | " + " | ".join(f"{int(params[d]):,}" for d in detectors) + " |")
    lines.append("")
    lines.append(
        "Detectors: "
        + "; ".join(f"`{d}`" for d in detectors)
        + ". Defence: "
        + ", ".join(f"`{d}`" for d in dict.fromkeys(models["defense"]))
        + "."
    )
    return "\n".join(lines)
