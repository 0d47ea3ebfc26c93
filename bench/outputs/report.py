"""One self-contained HTML page per results folder (``python -m bench report RESULTS_DIR``).

The page draws the figures and writes the LaTeX tables first (bench/outputs/figures.py, bench/outputs/latex.py),
then embeds every PNG as a data URI, shows the same accuracy tables in HTML, the trust flags of
the table (rows whose ``flags`` column is not empty, at the top) and the run's versions and
configuration from run.json. No external file, script or style sheet is referenced, so the page
can be mailed or attached as it is.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bench.core.cache import atomic_write_text
from bench.outputs.figures import FigureOutput, make_figures
from bench.outputs.formats import Results, load_results
from bench.outputs.latex import TableOutput, accuracy_frame, best_mask, interval_words, make_tables
from bench.outputs.summary import flagged_curves, reference_rows, short_labels

CAPTIONS = {
    "curves": "Robust accuracy against the budget (clean accuracy at 0) with 95% Wilson bands, per task and attack "
    "(input transforms: the attacker's best gradient at each epsilon).",
    "tradeoff": "Clean against robust accuracy (worst case over the attacks) at one budget; lines join a defence "
    "family's strength sweep.",
    "heatmap": "Robust accuracy (worst case over the attacks) of every detector x defence at one budget.",
    "gallery": "Clean patch, 8-bit adversarial patch (smallest budget that fooled the detector) and the perturbation "
    "amplified; p is the detector's probability of the true class.",
    "transfer": "Adversarial images crafted on a source model (rows) scored on every model of the task (columns): "
    "accuracy on them, and the share of the source's successes that also fool the target.",
    "min-norm-curves": "Robust accuracy of each minimum-norm attack as a continuous function of the budget (one "
    "unbounded run per cell), beside the PGD sweeps of the same norm at the matrix's epsilons.",
}

CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; font-size: .85em; margin: .5em 0 1em; }
th, td { padding: .2em .6em; border-bottom: 1px solid #e4e4e4; text-align: right; }
th { border-bottom: 2px solid #999; } td.name, th.name { text-align: left; font-family: monospace; }
.flags { background: #fff3f0; border: 2px solid #d9534f; padding: .5em 1em; border-radius: 4px; }
.ok { background: #f0fff3; border: 1px solid #5cb85c; padding: .5em 1em; border-radius: 4px; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: .85em; color: #555; } .note { color: #777; font-size: .9em; }
pre { background: #f6f6f6; padding: .6em; overflow-x: auto; font-size: .8em; }
small { color: #777; }
"""


@dataclass
class ReportOutput:
    """The page written and what went into it."""

    path: Path
    figures: FigureOutput
    tables: TableOutput
    flagged: int = 0  # flagged rows of the matrix table
    notes: list[str] = field(default_factory=list)


def _e(text: object) -> str:
    return html.escape(str(text))


def data_uri(path: Path) -> str:
    """A PNG file as a data URI."""
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _interval(value: tuple[float, float, float, bool]) -> str:
    v, low, high, flagged = value
    if not np.isfinite(v):
        return "&ndash;"
    mark = " <span title='a failure flag is raised on this number'>&dagger;</span>" if flagged else ""
    return f"{100 * v:.1f} <small>[{100 * low:.1f}, {100 * high:.1f}]</small>{mark}"


def accuracy_html(frame: pd.DataFrame) -> str:
    """An accuracy frame (bench.latex.accuracy_frame) as an HTML table, best per column bold."""
    columns = [c for c in frame.columns if c == "clean" or c.startswith("e=")]
    detectors, defenses = short_labels(list(frame["detector"])), short_labels(list(frame["defense"]))
    bold = {c: best_mask(frame, c) for c in columns}
    head = "".join(f"<th>{'clean' if c == 'clean' else _e(c[2:]) + '/255'}</th>" for c in columns)
    rows = []
    for i, (_, r) in enumerate(frame.iterrows()):
        cells = "".join(
            f"<td>{'<b>' if bold[c][i] else ''}{_interval(r[c])}{'</b>' if bold[c][i] else ''}</td>"
            if isinstance(r[c], tuple)
            else "<td>&ndash;</td>"
            for c in columns
        )
        rows.append(
            f"<tr><td class=name title='{_e(r['detector'])}'>{_e(detectors[r['detector']])}</td>"
            f"<td class=name title='{_e(r['defense'])}'>{_e(defenses[r['defense']])}</td>{cells}</tr>"
        )
    return f"<table><tr><th class=name>detector</th><th class=name>defence</th>{head}</tr>" + "".join(rows) + "</table>"


def flags_html(table: pd.DataFrame) -> tuple[str, int]:
    """The flags box (or the all-clear line) and the number of flagged rows: a count per flag,
    then one line per flagged (task, detector, defence, attack, gradient)."""
    if "flags" not in table.columns:
        return "<p class=note>This table has no trust-flags column (written by an older run).</p>", 0
    flags = table["flags"].fillna("").astype(str)
    n = int((flags != "").sum())
    if not n:
        return "<p class=ok id=flags>No trust flag fired on any row.</p>", 0
    counts = pd.Series([f for fs in flags[flags != ""] for f in fs.split(",") if f]).value_counts()
    groups = flagged_curves(table)
    labels = {c: short_labels(list(groups[c])) for c in ("detector", "defense", "attack")}
    rows = "".join(
        f"<tr><td class=name>{_e(r['flag'])}</td><td class=name>{_e(r['task'])}</td>"
        + "".join(
            f"<td class=name title='{_e(r[c])}'>{_e(labels[c][r[c]])}</td>" for c in ("detector", "defense", "attack")
        )
        + f"<td class=name>{_e(r['gradient'])}</td><td class=name>{_e(r['variants'])}</td>"
        f"<td>{_e(r['epsilons_255'])}</td><td>{r['robust_accuracy']:.3f}</td></tr>"
        for _, r in groups.iterrows()
    )
    summary = ", ".join(f"<b>{_e(flag)}</b> on {count} rows" for flag, count in counts.items())
    return (
        f"<div class=flags id=flags><h2>Flagged rows: {n} of {len(table)}</h2><p>A trust indicator fired: {summary}. "
        "Read these numbers with care (docs/flags.md explains each flag).</p>"
        f"<details{' open' if len(groups) <= 15 else ''}><summary>{len(groups)} flagged attack curves</summary>"
        "<table><tr><th class=name>flag</th><th class=name>task</th><th class=name>detector</th><th class=name>defence</th>"
        "<th class=name>attack</th><th class=name>gradient</th><th class=name>variants</th><th>epsilons</th>"
        f"<th>lowest robust acc.</th></tr>{rows}</table></details></div>"
    ), n


def models_html(models: pd.DataFrame) -> str:
    """models.csv as an HTML table (a seed column where the models have several training seeds)."""
    detectors, defenses = short_labels(list(models["detector"])), short_labels(list(models["defense"]))
    seeded = "training_seed" in models and models["training_seed"].astype(str).nunique() > 1

    def seed(r: pd.Series) -> str:
        return f"<td>{_e(r['training_seed'])}</td>" if seeded else ""

    rows = "".join(
        f"<tr><td class=name>{_e(r['task'])}</td><td class=name title='{_e(r['detector'])}'>{_e(detectors[r['detector']])}</td>"
        f"<td class=name title='{_e(r['defense'])}'>{_e(defenses[r['defense']])}</td>{seed(r)}<td>{int(r['test_n'])}</td>"
        f"<td>{_interval((r['test_accuracy'], r['test_accuracy_low'], r['test_accuracy_high'], False))}</td>"
        f"<td>{r['train_seconds']:.0f}</td><td class=name>{_e(r.get('error', '') if pd.notna(r.get('error', '')) else '')}</td></tr>"
        for _, r in models.iterrows()
    )
    return (
        "<table><tr><th class=name>task</th><th class=name>detector</th><th class=name>defence</th>"
        + ("<th>seed</th>" if seeded else "")
        + "<th>n</th>"
        f"<th>clean test accuracy (%)</th><th>training (s)</th><th class=name>error</th></tr>{rows}</table>"
    )


def render(results: Results, figures: FigureOutput, tables: TableOutput) -> tuple[str, int]:
    """The HTML page and the number of flagged rows."""
    run = results.run
    config = run.get("configuration", {})
    flags, n_flagged = flags_html(results.headline)
    parts = [
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>",
        f"<title>forensic-robustness bench: {_e(results.name)}</title><style>{CSS}</style></head><body>",
        f"<h1>forensic-robustness bench: <code>{_e(results.name)}</code></h1>",
        f"<p>{_e(config.get('description', ''))}</p>",
        (
            f"<p class=note>Finished {_e(run.get('finished', '?'))} on {_e(run.get('host', {}).get('platform', '?'))}; "
            f"{_e(results.folder)}. Single-budget figures and tables at &epsilon; = "
            f"{'' if figures.epsilon is None else f'{figures.epsilon:g}'}/255.</p>"
        ),
        flags,
        "<h2>Figures</h2>",
    ]
    seeds = len(results.seeds)
    seeded_note = (
        f" With {seeds} training seeds: the mean over the seeds, intervals spanning every seed's"
        " (min-norm curves: the first seed's)."
        if seeds > 1
        else ""
    )
    for name, paths in figures.written.items():
        png = next(p for p in paths if p.suffix == ".png")
        parts.append(
            f"<figure id=fig-{name}><img alt='{_e(name)}' src='{data_uri(png)}'>"
            f"<figcaption><b>{_e(name)}.</b> {_e(CAPTIONS.get(name, ''))}{_e(seeded_note)} "
            f"<small>({_e(png.with_suffix('.pdf').name)} beside it for print)</small></figcaption></figure>"
        )
    for name, why in figures.skipped.items():
        parts.append(f"<p class=note>No {_e(name)} figure: {_e(why)}.</p>")
    parts.append("<h2>Tables</h2>")
    for norm in ("linf", "l2"):
        reference = reference_rows(results.headline, norm)
        if reference.empty or reference["norm"].iloc[0] != norm:
            continue
        for task in dict.fromkeys(reference["task"]):
            parts.append(
                f"<h3>{_e(task)}, {'L&infin;' if norm == 'linf' else 'L2'}: clean and robust accuracy (%), "
                f"worst case per patch over the attacks, {_e(interval_words(len(results.seeds)))}</h3>"
            )
            parts.append(accuracy_html(accuracy_frame(reference, task)))
    if results.models is not None and len(results.models):
        parts += ["<h3>Models: clean accuracy on the whole held-out test split</h3>", models_html(results.models)]
    if tables.written:
        parts.append(
            "<p class=note>LaTeX versions: " + ", ".join(_e(p.name) for p in tables.written) + " in tables/.</p>"
        )
    parts += [
        "<h2>Run</h2><h3>Versions</h3><table>",
        "".join(
            f"<tr><td class=name>{_e(k)}</td><td class=name>{_e(v)}</td></tr>"
            for k, v in run.get("versions", {}).items()
        ),
        "</table><h3>Configuration</h3>",
        f"<pre>{_e(json.dumps(config, indent=2))}</pre>",
        "<h3>Host, statistics and timings</h3>",
        f"<pre>{_e(json.dumps({k: run.get(k) for k in ('host', 'images', 'stats', 'timings')}, indent=2))}</pre>",
        "</body></html>",
    ]
    return "\n".join(parts), n_flagged


def make_report(results: Results | str | Path, *, epsilon: float | None = None) -> ReportOutput:
    """Draw the figures, write the tables, then RESULTS/report.html."""
    results = results if isinstance(results, Results) else load_results(results)
    figures = make_figures(results, epsilon=epsilon)
    tables = make_tables(results)
    page, flagged = render(results, figures, tables)
    path = results.folder / "report.html"
    atomic_write_text(path, page)
    return ReportOutput(path, figures, tables, flagged)
