"""LaTeX tables (booktabs) from a finished run's folder (``python -m bench tables RESULTS_DIR``).

- ``accuracy-<task>-<norm>.tex``: per detector x defence, clean accuracy and robust accuracy at
  every epsilon on the attacked patches (the ``ensemble`` rows: worst case per patch over every
  attack of that norm), in percent with the 95% Wilson interval as a subscript; the best value
  of each column is bold (every tied one).
- ``models.tex``: clean accuracy of every trained model on the whole held-out test split.

Labels are the figures' short canonical labels; the caption spells out the full names. Values
come from the tidy tables only. :func:`accuracy_frame` returns the same numbers as a DataFrame,
for the HTML report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bench.core.cache import atomic_write_text
from bench.core.schema import flagged_rows
from bench.outputs.formats import Results, load_results
from bench.outputs.summary import reference_rows, short_labels

_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


@dataclass
class TableOutput:
    """Files written by ``make_tables`` and why others were not."""

    written: list[Path] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def escape(text: str) -> str:
    """Text safe in LaTeX text mode."""
    return "".join(_ESCAPES.get(c, c) for c in str(text))


def slug(text: str) -> str:
    """A file-name-safe form of a canonical name."""
    return re.sub(r"[^A-Za-z0-9.]+", "-", str(text)).strip("-")


def _pct(value: float) -> str:
    return f"{100 * value:.1f}" if np.isfinite(value) else "--"


DAGGER = r"$^\dagger$"  # marks a number on which a failure flag is raised (the caption says so)


def cell(value: float, low: float, high: float, flagged: bool = False, *, bold: bool = False) -> str:
    """``$95.2_{[93.1,\\,96.7]}$`` (percent), the value bold when ``bold``, a dagger when
    ``flagged`` (a trust flag reporting a failure of the evaluation is raised on it)."""
    if not np.isfinite(value):
        return "--"
    main = rf"\mathbf{{{_pct(value)}}}" if bold else _pct(value)
    mark = r"^{\dagger}" if flagged else ""  # inside the math: "$$" would open display math
    return rf"${main}_{{[{_pct(low)},\,{_pct(high)}]}}{mark}$"


def accuracy_frame(reference: pd.DataFrame, task: str) -> pd.DataFrame:
    """One row per (detector, defence) of a task: ``clean`` and ``e=<eps>`` columns of
    (value, low, high, flagged) tuples, in the table's order; ``flagged``: a failure flag is
    raised on the row (docs/flags.md, Severity)."""
    rows = reference[reference["task"] == task]
    rows = rows.assign(_flagged=flagged_rows(rows))
    out = []
    for (detector, defense), g in rows.groupby(["detector", "defense"], sort=False):
        g = g.sort_values("epsilon_255")
        first = g.iloc[0]
        record = {
            "detector": detector,
            "defense": defense,
            "n": int(first["n"]),
            "clean": (first["clean_accuracy"], first["clean_accuracy_low"], first["clean_accuracy_high"], False),
        }
        for _, r in g.iterrows():
            record[f"e={r['epsilon_255']:g}"] = (
                r["robust_accuracy"],
                r["robust_accuracy_low"],
                r["robust_accuracy_high"],
                bool(r["_flagged"]),
            )
        out.append(record)
    return pd.DataFrame(out)


def best_mask(frame: pd.DataFrame, column: str) -> np.ndarray:
    """Rows holding the column's best value as printed (ties all count)."""
    shown = np.array(
        [round(100 * v[0], 1) if isinstance(v, tuple) and np.isfinite(v[0]) else -np.inf for v in frame[column]]
    )
    return (shown == shown.max()) & np.isfinite(shown) if len(shown) else np.zeros(0, dtype=bool)


def _caption_names(kind: str, labels: dict[str, str]) -> str:
    full = [f"\\texttt{{{escape(s)}}} = \\texttt{{{escape(f)}}}" for f, s in labels.items() if s != f]
    return f" {kind}: " + "; ".join(full) + "." if full else ""


def interval_words(seeds: int) -> str:
    """What a table's intervals are: one training's 95% Wilson interval, or with several training
    seeds the mean and an interval spanning every seed's (bench/run/seeds.py)."""
    if seeds > 1:
        return f"mean over {seeds} training seeds, interval spanning every seed's 95% Wilson interval"
    return "95% Wilson interval"


def accuracy_latex(frame: pd.DataFrame, *, task: str, norm: str, attacks: str, source: str, seeds: int = 1) -> str:
    """The booktabs table of :func:`accuracy_frame`."""
    eps_cols = [c for c in frame.columns if c.startswith("e=")]
    detectors, defenses = short_labels(list(frame["detector"])), short_labels(list(frame["defense"]))
    bold = {c: best_mask(frame, c) for c in ["clean", *eps_cols]}
    wide = len(eps_cols) > 3
    env = "table*" if wide else "table"
    n = sorted(set(frame["n"]))
    flagged = any(isinstance(v, tuple) and v[3] for c in eps_cols for v in frame[c])
    flag_note = (
        f" {DAGGER}: a trust flag reporting a failure of the evaluation is raised on this number; it may overstate "
        "robustness (docs/flags.md)."
        if flagged
        else ""
    )
    norm_tex = "$L_\\infty$" if norm == "linf" else "$L_2$"
    lines = [
        f"% generated by `python -m bench tables` from {escape(source)}; do not edit",
        f"\\begin{{{env}}}[t]",
        "\\centering",
        (
            f"\\caption{{Clean and robust accuracy (\\%, {escape(interval_words(seeds))}) on \\texttt{{{escape(task)}}}, "
            f"{norm_tex} budgets $\\epsilon$ in 8-bit units, worst case per patch over "
            f"{escape(attacks)} ($n$ = {', '.join(map(str, n))} attacked test patches). Best per column in bold."
            f"{flag_note}{_caption_names('Detectors', detectors)}{_caption_names('Defences', defenses)}}}"
        ),
        f"\\label{{tab:accuracy-{slug(task)}-{norm}}}",
        "\\small" if not wide else "\\footnotesize",
        f"\\begin{{tabular}}{{ll{'r' * (1 + len(eps_cols))}}}",
        "\\toprule",
        f"detector & defence & clean & \\multicolumn{{{len(eps_cols)}}}{{c}}{{robust accuracy at $\\epsilon$}} \\\\",
        f"\\cmidrule(lr){{4-{3 + len(eps_cols)}}}",
        " & & & " + " & ".join(f"{c[2:]}/255" for c in eps_cols) + " \\\\",
        "\\midrule",
    ]
    previous = None
    for i, (_, row) in enumerate(frame.iterrows()):
        name = f"\\texttt{{{escape(detectors[row['detector']])}}}" if row["detector"] != previous else ""
        if previous is not None and row["detector"] != previous:
            lines.append("\\addlinespace")
        previous = row["detector"]
        values = [
            cell(*row[c], bold=bool(bold[c][i])) if isinstance(row[c], tuple) else "--" for c in ["clean", *eps_cols]
        ]
        lines.append(f"{name} & \\texttt{{{escape(defenses[row['defense']])}}} & " + " & ".join(values) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", f"\\end{{{env}}}", ""]
    return "\n".join(lines)


def models_latex(models: pd.DataFrame, *, source: str) -> str:
    """Clean accuracy of every trained model on the whole test split (one row per task x detector
    x defence, and training seed where there are several), best per task in bold (with several
    seeds none: the best would be the luckiest training)."""
    detectors, defenses = short_labels(list(models["detector"])), short_labels(list(models["defense"]))
    seeds = models["training_seed"].astype(str).nunique() if "training_seed" in models else 1
    lines = [
        f"% generated by `python -m bench tables` from {escape(source)}; do not edit",
        "\\begin{table}[t]",
        "\\centering",
        (
            "\\caption{Clean accuracy (\\%, 95\\% Wilson interval) of every model on the whole held-out test split; "
            + (f"one row per training seed ({seeds} seeds)." if seeds > 1 else "best per task in bold.")
            + f"{_caption_names('Detectors', detectors)}{_caption_names('Defences', defenses)}}}"
        ),
        "\\label{tab:models}",
        "\\small",
        "\\begin{tabular}{llllrr}" if seeds > 1 else "\\begin{tabular}{lllrr}",
        "\\toprule",
        "task & detector & defence & seed & $n$ & clean accuracy \\\\"
        if seeds > 1
        else "task & detector & defence & $n$ & clean accuracy \\\\",
        "\\midrule",
    ]
    ok = models[models["test_accuracy"].notna()]
    for t, (task, g) in enumerate(ok.groupby("task", sort=False)):
        if t:
            lines.append("\\addlinespace")
        best = np.round(100 * g["test_accuracy"].to_numpy(), 1)
        for j, (_, r) in enumerate(g.iterrows()):
            bold = seeds == 1 and bool(best[j] == best.max())
            value = cell(r["test_accuracy"], r["test_accuracy_low"], r["test_accuracy_high"], bold=bold)
            seed = f" & {escape(str(r['training_seed']))}" if seeds > 1 else ""
            lines.append(
                f"\\texttt{{{escape(str(task))}}} & \\texttt{{{escape(detectors[r['detector']])}}} & "
                f"\\texttt{{{escape(defenses[r['defense']])}}}{seed} & {int(r['test_n'])} & {value} \\\\"
            )
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}", ""]
    return "\n".join(lines)


def attacks_label(table: pd.DataFrame, task: str, norm: str) -> str:
    """Which attacks the reference rows of a task and norm cover (for captions)."""
    rows = table[
        (table["task"] == task)
        & (table["norm"] == norm)
        & (table["attack"] != "ensemble")
        & (table["threat"] != "control")
        & (table["error"] == "")
    ]
    names = sorted({a.split("[")[0] for a in rows["attack"]})
    return ", ".join(names) if len(names) <= 6 else f"{len(names)} attacks"


def make_tables(results: Results | str | Path, *, out_dir: str | Path | None = None) -> TableOutput:
    """Write every table into ``out_dir`` (default ``RESULTS/tables``)."""
    results = results if isinstance(results, Results) else load_results(results)
    out = Path(out_dir) if out_dir is not None else results.folder / "tables"
    report = TableOutput()
    source = f"{results.folder.name}/matrix.parquet"
    ok = results.headline[
        (results.headline["error"] == "")
        & (results.headline["quantized"] == "float")
        & (results.headline["postprocess"] == "none")
    ]
    norms = [n for n in ("linf", "l2") if n in set(ok["norm"])]
    for norm in norms:
        reference = reference_rows(results.headline, norm)
        for task in dict.fromkeys(reference["task"]):
            frame = accuracy_frame(reference, task)
            path = out / f"accuracy-{slug(task)}-{norm}.tex"
            atomic_write_text(
                path,
                accuracy_latex(
                    frame,
                    task=task,
                    norm=norm,
                    attacks=attacks_label(results.headline, task, norm),
                    source=source,
                    seeds=len(results.seeds),
                ),
            )
            report.written.append(path)
    if not norms:
        report.skipped["accuracy"] = "no successful rows"
    if results.models is not None and results.models["test_accuracy"].notna().any():
        path = out / "models.tex"
        atomic_write_text(path, models_latex(results.models, source=f"{results.folder.name}/models.csv"))
        report.written.append(path)
    else:
        report.skipped["models"] = "no models.csv with trained models"
    return report


def standalone(tables: list[str]) -> str:
    """A minimal document holding the tables (to compile-check them)."""
    body = "\n\\clearpage\n".join(tables)
    return (
        "\\documentclass[twocolumn]{article}\n\\usepackage{booktabs}\n\\usepackage{amsmath}\n"
        f"\\begin{{document}}\n{body}\n\\end{{document}}\n"
    )
