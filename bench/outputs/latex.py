"""LaTeX tables (booktabs) from a finished run's folder (``python -m bench tables RESULTS_DIR``).

- ``accuracy-<task>-<norm>.tex``: per detector x defence, clean accuracy and robust accuracy at
  every epsilon on the attacked patches (the ``ensemble`` rows: worst case per patch over every
  attack of that norm), in percent with the 95% Wilson interval as a subscript; the best value
  of each column is bold (every tied one).
- ``models.tex``: clean accuracy of every trained model on the whole held-out test split.

Labels are the figures' short canonical labels; the caption spells out the full names. Values
come from the tidy tables only. The tables are laid out by pandas' Styler (``to_latex`` with
booktabs rules); the cells are LaTeX written here (:func:`cell`). :func:`accuracy_frame` returns the same numbers as a DataFrame,
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


def styled(
    frame: pd.DataFrame,
    *,
    caption: str,
    label: str,
    column_format: str,
    wide: bool = False,
    size: str = "small",
    source: str,
    spanning: tuple[int, int] | None = None,
) -> str:
    """A frame of LaTeX cell texts as a booktabs table through pandas' Styler: ``caption`` and
    ``label``, ``table*`` when ``wide``, ``\\small`` (or ``size``) type, a comment naming the
    command and ``source``; ``spanning`` = (first, last) column numbers of a spanning header, ruled
    with ``\\cmidrule`` (the one thing Styler does not write)."""
    styler = frame.style.hide(axis="index")
    styler.set_table_styles([{"selector": size, "props": ":;"}], overwrite=False)
    text = styler.to_latex(
        hrules=True,
        caption=caption,
        label=label,
        position="t",
        position_float="centering",
        column_format=column_format,
        multicol_align="c",
        environment="table*" if wide else "table",
    )
    if spanning is not None:
        head, rest = text.split("\\multicolumn", 1)
        line, rest = rest.split("\n", 1)
        text = f"{head}\\multicolumn{line}\n\\cmidrule(lr){{{spanning[0]}-{spanning[1]}}}\n{rest}"
    return f"% generated by `python -m bench tables` from {escape(source)}; do not edit\n{text}"


def _names(values: list[str], labels: dict[str, str]) -> list[str]:
    """``\\texttt`` labels, each shown only on the first of a run of equal values (grouped rows)."""
    return [f"\\texttt{{{escape(labels[v])}}}" if i == 0 or v != values[i - 1] else "" for i, v in enumerate(values)]


def accuracy_latex(frame: pd.DataFrame, *, task: str, norm: str, attacks: str, source: str, seeds: int = 1) -> str:
    """The booktabs table of :func:`accuracy_frame` (pandas' Styler)."""
    eps_cols = [c for c in frame.columns if c.startswith("e=")]
    detectors, defenses = short_labels(list(frame["detector"])), short_labels(list(frame["defense"]))
    bold = {c: best_mask(frame, c) for c in ["clean", *eps_cols]}
    n = sorted(set(frame["n"]))
    flagged = any(isinstance(v, tuple) and v[3] for c in eps_cols for v in frame[c])
    flag_note = (
        f" {DAGGER}: a trust flag reporting a failure of the evaluation is raised on this number; it may overstate "
        "robustness (docs/flags.md)."
        if flagged
        else ""
    )
    norm_tex = "$L_\\infty$" if norm == "linf" else "$L_2$"
    caption = (
        f"Clean and robust accuracy (\\%, {escape(interval_words(seeds))}) on \\texttt{{{escape(task)}}}, "
        f"{norm_tex} budgets $\\epsilon$ in 8-bit units, worst case per patch over "
        f"{escape(attacks)} ($n$ = {', '.join(map(str, n))} attacked test patches). Best per column in bold."
        f"{flag_note}{_caption_names('Detectors', detectors)}{_caption_names('Defences', defenses)}"
    )
    spanning = "robust accuracy at $\\epsilon$"
    table = {
        ("", "detector"): _names(list(frame["detector"]), detectors),
        ("", "defence"): [f"\\texttt{{{escape(defenses[d])}}}" for d in frame["defense"]],
    }
    for c in ["clean", *eps_cols]:
        head = ("", "clean") if c == "clean" else (spanning, f"{c[2:]}/255")
        table[head] = [
            cell(*v, bold=bool(bold[c][i])) if isinstance(v, tuple) else "--" for i, v in enumerate(frame[c])
        ]
    body = pd.DataFrame(table)
    body.columns = pd.MultiIndex.from_tuples(list(table))
    return styled(
        body,
        caption=caption,
        label=f"tab:accuracy-{slug(task)}-{norm}",
        column_format=f"ll{'r' * (1 + len(eps_cols))}",
        wide=len(eps_cols) > 3,
        size="footnotesize" if len(eps_cols) > 3 else "small",
        source=source,
        spanning=(4, 3 + len(eps_cols)),
    )


def models_latex(models: pd.DataFrame, *, source: str) -> str:
    """Clean accuracy of every trained model on the whole test split (one row per task x detector
    x defence, and training seed where there are several), best per task in bold (with several
    seeds none: the best would be the luckiest training); pandas' Styler."""
    detectors, defenses = short_labels(list(models["detector"])), short_labels(list(models["defense"]))
    seeds = models["training_seed"].astype(str).nunique() if "training_seed" in models else 1
    caption = (
        "Clean accuracy (\\%, 95\\% Wilson interval) of every model on the whole held-out test split; "
        + (f"one row per training seed ({seeds} seeds)." if seeds > 1 else "best per task in bold.")
        + f"{_caption_names('Detectors', detectors)}{_caption_names('Defences', defenses)}"
    )
    ok = models[models["test_accuracy"].notna()]
    shown = np.round(100 * ok["test_accuracy"].to_numpy(dtype=float), 1)
    best = ok.assign(_shown=shown).groupby("task", sort=False)["_shown"].transform("max").to_numpy()
    values = [
        cell(r["test_accuracy"], r["test_accuracy_low"], r["test_accuracy_high"], bold=seeds == 1 and s == b)
        for (_, r), s, b in zip(ok.iterrows(), shown, best, strict=True)
    ]
    table = {
        "task": _names([str(t) for t in ok["task"]], {str(t): str(t) for t in ok["task"]}),
        "detector": [f"\\texttt{{{escape(detectors[d])}}}" for d in ok["detector"]],
        "defence": [f"\\texttt{{{escape(defenses[d])}}}" for d in ok["defense"]],
        **({"seed": [escape(str(s)) for s in ok["training_seed"]]} if seeds > 1 else {}),
        "$n$": [str(int(n)) for n in ok["test_n"]],
        "clean accuracy": values,
    }
    return styled(
        pd.DataFrame(table),
        caption=caption,
        label="tab:models",
        column_format="llllrr" if seeds > 1 else "lllrr",
        source=source,
    )


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
