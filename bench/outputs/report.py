"""One self-contained HTML page per results folder (``python -m bench report RESULTS_DIR``).

The page draws the figures and writes the LaTeX tables first (bench/outputs/figures.py,
bench/outputs/latex.py), then renders ``templates/report.html.j2`` (Jinja2, autoescaped): the
trust flags at the top (rows per flag, then each flagged curve and variant with its own robust
accuracy at every flagged epsilon and, for a paired flag, its yardstick's), every PNG as a data
URI with its caption and the full names of its shortened labels, the accuracy and models tables,
the run's configuration, datasets, statistics, timings, host and versions from run.json as
tables, and the explanation of every flag raised, rendered from docs/flags.md into the page so
that its links are anchors of the page itself. No external file, script or style sheet is
referenced, so the page can be mailed or attached as it is.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.core.cache import atomic_write_text
from bench.core.schema import PRECISION_FLAGS
from bench.outputs.figures import CAPTIONS, FigureOutput, make_figures
from bench.outputs.formats import Results, load_results
from bench.outputs.latex import TableOutput, accuracy_frame, best_mask, interval_words, make_tables
from bench.outputs.summary import YARDSTICKS, flag_rows, reference_rows, short_labels

# docs/flags.md of the source tree this package runs from (an editable install, the README's)
FLAGS_DOC = Path(__file__).resolve().parents[2] / "docs" / "flags.md"
YARDSTICK_NAMES = {"weaker_than_reference": "reference attack", "not_converged": "convergence run"}
NORM_NAMES = {"linf": "L\u221e", "l2": "L2"}


@dataclass
class ReportOutput:
    """The page written and what went into it."""

    path: Path
    figures: FigureOutput
    tables: TableOutput
    flagged: int = 0  # flagged rows of the matrix table
    notes: list[str] = field(default_factory=list)


def data_uri(path: Path) -> str:
    """A PNG file as a data URI."""
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _number(value: Any) -> float | None:
    return float(value) if value is not None and pd.notna(value) and np.isfinite(float(value)) else None


def accuracy_rows(frame: pd.DataFrame) -> dict[str, Any]:
    """An accuracy frame (bench.outputs.latex.accuracy_frame) for the template: the column heads and per
    row the short and full names and each cell's value, interval, failure flag and bold (best of
    its column)."""
    columns = [c for c in frame.columns if c == "clean" or c.startswith("e=")]
    detectors, defenses = short_labels(list(frame["detector"])), short_labels(list(frame["defense"]))
    bold = {c: best_mask(frame, c) for c in columns}
    rows = []
    for i, (_, r) in enumerate(frame.iterrows()):
        cells = []
        for c in columns:
            value = r[c] if isinstance(r[c], tuple) else (np.nan, np.nan, np.nan, False)
            cells.append(
                {
                    "value": _number(value[0]),
                    "low": _number(value[1]),
                    "high": _number(value[2]),
                    "flagged": bool(value[3]),
                    "bold": bool(bold[c][i]),
                }
            )
        rows.append(
            {
                "detector": detectors[r["detector"]],
                "detector_full": r["detector"],
                "defense": defenses[r["defense"]],
                "defense_full": r["defense"],
                "cells": cells,
            }
        )
    heads = ["clean" if c == "clean" else f"{c[2:]}/255" for c in columns]
    return {"heads": heads, "rows": rows}


def flag_summary(table: pd.DataFrame) -> dict[str, Any]:
    """The flags box: rows per flag (with its severity) and one entry per flagged (flag, curve,
    variant) listing the row's own robust accuracy at every flagged epsilon, and the yardstick's for
    a paired flag. ``present`` is False for a table written before flags existed."""
    if "flags" not in table.columns:
        return {"present": False, "rows": 0, "total": len(table), "counts": [], "curves": []}
    flags = table["flags"].fillna("").astype(str)
    n = int((flags != "").sum())
    rows = flag_rows(table)
    counts = [
        {"flag": name, "rows": len(g), "severity": "precision" if name in PRECISION_FLAGS else "failure"}
        for name, g in rows.groupby("flag", sort=False)
    ]
    counts.sort(key=lambda c: c["severity"] != "failure")  # failures first, each in the flags' order
    labels = {c: short_labels(list(rows[c])) for c in ("detector", "defense", "attack")}
    keys = ["flag", "task", "detector", "defense", "attack", "gradient", "norm", "quantized", "postprocess"]
    curves = []
    for key, g in rows.groupby(keys, sort=False):
        record = {k: str(v) for k, v in zip(keys, key, strict=True)}
        curves.append(
            {
                **record,
                "severity": "precision" if record["flag"] in PRECISION_FLAGS else "failure",
                "detector_short": labels["detector"][record["detector"]],
                "defense_short": labels["defense"][record["defense"]],
                "attack_short": labels["attack"][record["attack"]],
                "norm": NORM_NAMES.get(str(record["norm"]), str(record["norm"])),
                "variant": record["quantized"]
                if record["postprocess"] == "none"
                else f"{record['quantized']}, {record['postprocess']}",
                "yardstick_name": YARDSTICK_NAMES.get(str(record["flag"]), ""),
                "points": [
                    {
                        "epsilon": f"{r['epsilon_255']:g}",
                        "n": int(r["n"]),
                        "value": _number(r["robust_accuracy"]),
                        "low": _number(r["robust_accuracy_low"]),
                        "high": _number(r["robust_accuracy_high"]),
                        "yardstick": _number(r["yardstick"]),
                    }
                    for _, r in g.sort_values("epsilon_255").iterrows()
                ],
            }
        )
    curves.sort(key=lambda c: c["severity"] != "failure")
    return {"present": True, "rows": n, "total": len(table), "counts": counts, "curves": curves}


def flag_explanations(names: list[str], doc: Path = FLAGS_DOC) -> dict[str, Any]:
    """The sections of docs/flags.md a page needs, as HTML: "Severity" and the section of every flag
    in ``names`` (``### <name>``). Links are kept only where they point into the page (to another
    flag's section); any other link becomes its text, so a copied page leads nowhere it cannot go.
    ``found`` is False when the file is not beside this installation."""
    if not doc.is_file():
        return {"found": False, "doc": str(doc), "severity": "", "sections": []}
    from markdown_it import MarkdownIt

    text = doc.read_text(encoding="utf-8")
    parts = {
        m.group(2).strip(): m.group(3)
        for m in re.finditer(r"^(#{2,3}) (.+?)\n(.*?)(?=^#{1,3} |\Z)", text, re.MULTILINE | re.DOTALL)
    }
    md = MarkdownIt("commonmark")

    def html(body: str) -> str:
        rendered = md.render(body)
        rendered = re.sub(r'<a href="(?!#)[^"]*">(.*?)</a>', r"\1", rendered, flags=re.DOTALL)
        return re.sub(r"<code>([a-z_]+)</code>", lambda m: _flag_link(m.group(1), names), rendered)

    sections = [{"name": n, "html": html(parts[n])} for n in names if n in parts]
    return {"found": True, "doc": str(doc), "severity": html(parts.get("Severity", "")), "sections": sections}


def _flag_link(word: str, names: list[str]) -> str:
    """``<code>name</code>``, linked to the flag's section when the page explains it."""
    return f'<a href="#flag-{word}"><code>{word}</code></a>' if word in names else f"<code>{word}</code>"


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def key_values(data: dict[str, Any]) -> list[dict[str, Any]]:
    """A run.json object as table rows: a scalar as text, a list of scalars as its items, an object as
    nested rows (rendered as a table inside the cell)."""
    rows: list[dict[str, Any]] = []
    for key, value in data.items():
        if isinstance(value, dict):
            rows.append({"key": key, "kind": "table", "value": key_values(value) if value else []})
        elif isinstance(value, list) and all(not isinstance(v, dict | list) for v in value):
            numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
            rows.append({"key": key, "kind": "numbers" if numbers else "list", "value": [_scalar(v) for v in value]})
        else:
            rows.append({"key": key, "kind": "text", "value": _scalar(value)})
    return rows


def dataset_rows(datasets: dict[str, Any]) -> list[dict[str, Any]]:
    """run.json's ``datasets``: one row per task and split (photos, locations, patches, class counts,
    locations dropped because the manipulation hardly changed them)."""
    rows = []
    for task, info in datasets.items():
        for split, s in (info.get("splits") or {}).items():
            rows.append(
                {
                    "task": task,
                    "split": split,
                    "photos": ", ".join(map(str, s.get("photos", []))),
                    "locations": s.get("locations", ""),
                    "patches": s.get("patches", ""),
                    "classes": ", ".join(
                        f"{c}: {k}"
                        for c, k in zip(info.get("classes") or [], s.get("class_counts") or [], strict=False)
                    ),
                    "dropped": s.get("dropped_unchanged", ""),
                }
            )
    return rows


def figure_entries(figures: FigureOutput, seeds: int) -> list[dict[str, Any]]:
    """Each written figure for the template: its image, caption and the full names of its labels."""
    entries = []
    for name, paths in figures.written.items():
        png = next(p for p in paths if p.suffix == ".png")
        labels = figures.labels.get(name, {})
        names = [
            {"kind": kind, "names": [{"short": s, "full": f} for f, s in shown.items() if s != f]}
            for kind, shown in labels.items()
        ]
        entries.append(
            {
                "name": name,
                "src": data_uri(png),
                "caption": CAPTIONS.get(name, ""),
                "seeds": seeds,
                "pdf": png.with_suffix(".pdf").name,
                "names": [n for n in names if n["names"]],
            }
        )
    return entries


def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("bench.outputs", "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = lambda v: "\u2013" if v is None else f"{100 * v:.1f}"
    return env


def render(results: Results, figures: FigureOutput, tables: TableOutput) -> tuple[str, int]:
    """The HTML page and the number of flagged rows."""
    run = results.run
    config = run.get("configuration", {})
    flags = flag_summary(results.headline)
    accuracy = []
    for norm in ("linf", "l2"):
        reference = reference_rows(results.headline, norm)
        if reference.empty or reference["norm"].iloc[0] != norm:
            continue
        accuracy += [
            {"task": task, "norm": NORM_NAMES[norm], **accuracy_rows(accuracy_frame(reference, task))}
            for task in dict.fromkeys(reference["task"])
        ]
    models = None
    if results.models is not None and len(results.models):
        m = results.models
        detectors, defenses = short_labels(list(m["detector"])), short_labels(list(m["defense"]))
        seeded = "training_seed" in m and m["training_seed"].astype(str).nunique() > 1
        models = {
            "seeded": seeded,
            "rows": [
                {
                    "task": r["task"],
                    "detector": detectors[r["detector"]],
                    "detector_full": r["detector"],
                    "defense": defenses[r["defense"]],
                    "defense_full": r["defense"],
                    "seed": r["training_seed"] if seeded else "",
                    "n": int(r["test_n"]),
                    "value": _number(r["test_accuracy"]),
                    "low": _number(r["test_accuracy_low"]),
                    "high": _number(r["test_accuracy_high"]),
                    "seconds": f"{r['train_seconds']:.0f}" if _number(r["train_seconds"]) is not None else "",
                    "error": r["error"] if "error" in m and pd.notna(r["error"]) else "",
                }
                for _, r in m.iterrows()
            ],
        }
    shown = [c["flag"] for c in flags["counts"]]
    run_table: dict[str, Any] = {
        k: run[k] for k in ("profile", "finished", "matrix", "device", "executor", "images") if k in run
    }
    timings = {k: f"{v:.1f} s" if isinstance(v, int | float) else str(v) for k, v in (run.get("timings") or {}).items()}
    context = {
        "name": results.name,
        "description": config.get("description", ""),
        "finished": run.get("finished", "?"),
        "platform": (run.get("host") or {}).get("platform", "?"),
        "folder": str(results.folder),
        "epsilon": None if figures.epsilon is None else f"{figures.epsilon:g}",
        "flags": flags,
        "explained": flag_explanations(shown) if shown else None,
        "figures": figure_entries(figures, len(results.seeds)),
        "skipped": figures.skipped,
        "interval_words": interval_words(len(results.seeds)),
        "accuracy": accuracy,
        "models": models,
        "latex": [p.name for p in tables.written],
        "configuration": key_values(config),
        "run": key_values(run_table),
        "datasets": dataset_rows(run.get("datasets") or {}),
        "stats": key_values(run.get("stats") or {}),
        "timings": key_values(timings),
        "host": key_values(run.get("host") or {}),
        "versions": key_values(run.get("versions") or {}),
        "yardsticks": YARDSTICKS,
    }
    page = _environment().get_template("report.html.j2").render(**context)
    return page, int(flags["rows"])


def make_report(results: Results | str | Path, *, epsilon: float | None = None) -> ReportOutput:
    """Draw the figures, write the tables, then RESULTS/report.html."""
    results = results if isinstance(results, Results) else load_results(results)
    figures = make_figures(results, epsilon=epsilon)
    tables = make_tables(results)
    page, flagged = render(results, figures, tables)
    path = results.folder / "report.html"
    atomic_write_text(path, page)
    return ReportOutput(path, figures, tables, flagged)
