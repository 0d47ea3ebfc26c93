"""The forensic zoo: every detector trained on every task, summarised as a clean-accuracy table.

``python -m bench zoo`` trains (or fetches from the cache) the models of a train-only matrix
(``bench/inputs/matrices/zoo.toml`` by default) and writes into ``results/<profile>/``
``models.csv`` (tidy), ``per_photo.csv`` (accuracy on each test photograph), ``zoo.md`` (task x
detector, :func:`bench.outputs.pages.zoo_markdown`) and ``run.json``.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from bench.core.devices import on_device
from bench.core.inference import predict
from bench.outputs.formats import PER_PHOTO, ZOO_TABLE, ResultsFolder
from bench.outputs.pages import zoo_markdown
from bench.run.execute import Runner, obtain_dataset, obtain_model
from bench.run.plan import plan_models


def run_zoo(runner: Runner, folder: ResultsFolder) -> pd.DataFrame:
    """Train every model of the runner's matrix and write models.csv, per_photo.csv, zoo.md and run.json."""
    models = runner.train()
    folder.write_models(models)
    folder.write_csv(PER_PHOTO, per_photo_accuracy(runner))
    folder.write_text(ZOO_TABLE, zoo_markdown(models) + "\n")
    folder.write_run_info(runner.run_info(runner.tables()))
    return models


def per_photo_accuracy(runner: Runner) -> pd.DataFrame:
    """Clean test accuracy of every stored model on each test photograph (where the errors are), on
    the runner's device."""
    import torch

    matrix, store = runner.matrix, runner.store
    device = torch.device(runner.device)
    rows: list[dict[str, Any]] = []
    dataset = None
    for job in plan_models(matrix, runner.source, runner.device_kind):  # the run's keys: its device kind
        if dataset is None or dataset.key != job.dataset_key:
            dataset = obtain_dataset(job.task, runner.source, matrix.data, matrix.seed, store, job.dataset_key)
        ds = dataset
        trained = obtain_model(job, ds, matrix, store, device=device)
        correct = predict(on_device(trained.model, device), ds.floats("test"), device=device) == ds.y["test"]
        for photo in sorted(set(ds.source["test"])):
            mask = ds.source["test"] == photo
            rows.append(
                {
                    "task": str(job.task),
                    "detector": str(job.detector),
                    "defense": str(job.defense),
                    "training_seed": str(job.training_seed),
                    "photo": photo,
                    "n": int(mask.sum()),
                    "accuracy": float(correct[mask].mean()),
                }
            )
    return pd.DataFrame(rows)
