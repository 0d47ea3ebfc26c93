"""The forensic zoo: every detector trained on every task, summarised as a clean-accuracy table.

``python -m bench zoo`` trains (or fetches from the cache) the models of a train-only matrix
(``bench/matrices/zoo.toml`` by default), writes ``results/<profile>/models.csv`` (tidy) and
``zoo.md`` (task x detector), and the CLI copies that table into README.md between markers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from bench.cache import atomic_write_text
from bench.runner import Runner
from bench.schema import MODEL_COLUMNS

BEGIN, END = "<!-- zoo-table:begin -->", "<!-- zoo-table:end -->"


def run_zoo(runner: Runner) -> pd.DataFrame:
    """Train every model of the runner's matrix and write models.csv, zoo.md and run.json."""
    from bench.versions import versions

    models = runner.train()
    out = runner.out_dir
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "models.csv", models.to_csv(index=False))
    atomic_write_text(out / "per_photo.csv", per_photo_accuracy(runner).to_csv(index=False))
    atomic_write_text(out / "zoo.md", zoo_markdown(models) + "\n")
    info = {"profile": runner.matrix.profile, "versions": versions(), "configuration": runner.matrix.to_dict(),
            "images": {"source": runner.source.label, "files": len(runner.source.files)},
            "datasets": runner.datasets, "stats": runner.stats}  # fmt: skip
    atomic_write_text(out / "run.json", json.dumps(info, indent=2, default=str) + "\n")
    return models


def per_photo_accuracy(runner: Runner) -> pd.DataFrame:
    """Clean test accuracy of every cached model on each test photograph (where the errors are)."""
    from bench.attacks.base import predict
    from bench.data import build_dataset
    from bench.runner import plan_models
    from bench.training import train_or_load

    m = runner.matrix
    rows, datasets = [], {}
    for job in plan_models(m, runner.source):
        if job.task not in datasets:
            datasets = {job.task: build_dataset(job.task, runner.source, m.data, m.seed, runner.cache_dir)}
        ds = datasets[job.task]
        trained = train_or_load(ds, job.detector, job.trained_as, m.training, m.seed, runner.cache_dir, key=job.key)
        correct = predict(trained.model, ds.floats("test")) == ds.y["test"]
        for photo in sorted(set(ds.source["test"])):
            mask = ds.source["test"] == photo
            rows.append({"task": str(job.task), "detector": str(job.detector), "defense": str(job.defense),
                         "photo": photo, "n": int(mask.sum()), "accuracy": float(correct[mask].mean())})  # fmt: skip
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
                cells.append(f"{r['test_accuracy']:.3f} [{r['test_accuracy_low']:.3f}, {r['test_accuracy_high']:.3f}]"
                             f" {r['train_seconds']:.0f} s")  # fmt: skip
        lines.append(f"| `{task}` ({n}) | " + " | ".join(cells) + " |")
    params = models.drop_duplicates("detector").set_index("detector")["parameters"]
    lines.append("| parameters (first task) | " + " | ".join(f"{int(params[d]):,}" for d in detectors) + " |")
    lines.append("")
    lines.append("Detectors: " + "; ".join(f"`{d}`" for d in detectors) + ". Defence: "
                 + ", ".join(f"`{d}`" for d in dict.fromkeys(models["defense"])) + ".")  # fmt: skip
    return "\n".join(lines)


def update_readme(readme: Path, markdown: str) -> bool:
    """Replace the text between the zoo markers of a README; False when the markers are absent."""
    text = readme.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        return False
    atomic_write_text(readme, pattern.sub(lambda _: f"{BEGIN}\n{markdown}\n{END}", text))
    return True
