"""Paper figures from a finished run's folder (``python -m bench figures RESULTS_DIR``).

One style for every figure, sized for a two-column paper (:data:`SINGLE` = 3.5 in, one column;
:data:`DOUBLE` = 7.2 in, both), TrueType fonts in the PDFs. Each figure is built from the files
of the results folder only (the tidy table, transfer.parquet, examples.npz); a figure whose
input the folder lacks, or that would show next to nothing at the matrix's size (a heatmap of one
defence, a trade-off without a second defence), is skipped with a note, never computed by
re-running an attack.

- ``curves``: robust accuracy against epsilon (clean accuracy at 0) with 95% Wilson bands, one
  panel per task x norm x attack (the norm's ``ensemble`` first), each norm on rows of its own,
  colour = defence, marker = detector;
- ``tradeoff``: clean against robust accuracy at one epsilon, one point per detector x defence,
  lines joining a defence family's strength sweep (``grad-penalty[lambda=...]``);
- ``heatmap``: detector x defence robust accuracy at one epsilon (seaborn, annotated);
- ``gallery``: clean patch, 8-bit adversarial patch and amplified perturbation with the
  detector's probability of the true class;
- ``transfer``: accuracy of every target detector on adversarial images crafted on every source
  detector of the same task, and the transfer success rate (seaborn, annotated);
- ``min-norm-curves``: the continuous robustness curve of each minimum-norm attack (one run gives
  every epsilon) beside the PGD sweeps of the same norm, one panel per model x norm.

Every panel shows one norm; every axis that shows tick labels is labelled; titles are at most
:data:`TITLE_MAX` characters (canonical names without the parameters every entry shares, see
:func:`bench.outputs.summary.short_labels`). Beside each figure ``<name>.caption.txt`` holds its
caption and the full canonical name of every shortened label.

After a run the CLI draws :data:`RUN_FIGURES` into the run's own folder (``curves.png``,
``min-norm-curves.png``); ``python -m bench figures`` draws them all into ``RESULTS/figures/``.

Single-epsilon figures use the ``ensemble`` rows (worst case per patch over every attack of a
norm, Linf first: :func:`bench.outputs.summary.reference_rows`) at ``--epsilon`` or, by default, the
epsilon where the models differ most (:func:`bench.outputs.summary.pick_epsilon`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bench.core.cache import atomic_write, atomic_write_text
from bench.core.schema import flagged_rows
from bench.outputs.formats import Results, load_results
from bench.outputs.summary import defense_families, parse_spec, pick_epsilon, reference_rows, short_labels

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SINGLE = 3.5  # inches: one column of a two-column paper
DOUBLE = 7.2  # inches: the full text width
FIGURES = ("curves", "tradeoff", "heatmap", "gallery", "transfer", "min-norm-curves")
RUN_FIGURES = ("curves", "min-norm-curves")  # drawn into a run's own folder after the run
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "<", ">", "*"]
LINESTYLES = ["-", "--", ":", "-."]
TITLE_MAX = 40  # characters of a panel title (both lines together)
NORMS = {"linf": "L\u221e", "l2": "L2"}  # a norm as titles and labels write it (L-infinity with the sign)
# the x axis of a norm's panels: an L2 budget e/255 is the norm of a change of e grey levels at every pixel
EPSILON_LABELS = {"linf": "L\u221e \u03b5 (8-bit units)", "l2": "L2 \u03b5 (8-bit, RMS per pixel)"}
_RERUN = "a run writes it when its matrix has a white-box fixed-epsilon Linf attack; rerun to add it"

CAPTIONS = {
    "curves": "Robust accuracy against the budget (clean accuracy at 0) with 95% Wilson bands, one panel per "
    "task, norm and attack, the norm's ensemble (worst case per patch over every attack and gradient) first "
    "(input transforms: the attacker's best gradient at each epsilon); red rings mark failure flags.",
    "tradeoff": "Clean against robust accuracy (worst case over the attacks) at one budget; lines join a defence "
    "family's strength sweep.",
    "heatmap": "Robust accuracy (worst case over the attacks) of every detector x defence at one budget.",
    "gallery": "Clean patch, 8-bit adversarial patch (smallest budget that fooled the detector) and the perturbation "
    "amplified; p is the detector's probability of the true class.",
    "transfer": "Adversarial images crafted on a source model (rows) scored on every model of the task (columns): "
    "accuracy on them, and the share of the source's successes that also fool the target.",
    "min-norm-curves": "Robust accuracy of each minimum-norm attack as a continuous function of the budget (one "
    "unbounded run per cell), beside the PGD sweeps of the same norm at the matrix's epsilons; one panel per "
    "model and norm.",
}

STYLE = {
    "font.size": 7,
    "axes.titlesize": 7,
    "axes.labelsize": 7,
    "xtick.labelsize": 6,
    "ytick.labelsize": 6,
    "legend.fontsize": 6,
    "legend.title_fontsize": 6,
    "lines.linewidth": 1.0,
    "lines.markersize": 3,
    "axes.linewidth": 0.6,
    "grid.linewidth": 0.4,
    "grid.alpha": 0.5,
    "axes.grid": True,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
    "savefig.dpi": 200,
    "figure.dpi": 100,
    "font.family": "sans-serif",
}


@dataclass
class FigureOutput:
    """What ``make_figures`` did: files written per figure (PDF, PNG, caption), and why the others
    were skipped."""

    epsilon: float | None = None
    written: dict[str, list[Path]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    # per figure written: per kind of label (Attacks, Detectors, Defences) each full name -> its label
    labels: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)


@contextmanager
def paper_style() -> Iterator[None]:
    """The figures' matplotlib style (nothing global is changed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with plt.style.context(STYLE):
        yield


def _palette(n: int) -> list[Any]:
    import seaborn as sns

    return list(sns.color_palette("colorblind", n)) if n <= 10 else list(sns.color_palette("husl", n))


# the mark over a point on which a failure flag is raised (docs/flags.md, Severity)
FLAG_MARK: dict[str, Any] = {
    "marker": "o",
    "s": 70,
    "facecolors": "none",
    "edgecolors": "red",
    "linewidths": 1.0,
    "zorder": 5,
    "label": "failure flag raised",
}


def _ok_float(table: pd.DataFrame) -> pd.DataFrame:
    return table[(table["error"] == "") & (table["quantized"] == "float") & (table["postprocess"] == "none")]


def _norms(norms: Any) -> list[str]:
    """The norms present, Linf first, then L2, then any other."""
    present = list(dict.fromkeys(str(n) for n in norms))
    return sorted(present, key=lambda n: (list(NORMS).index(n) if n in NORMS else len(NORMS), present.index(n)))


def params_text(label: str) -> str:
    """The ``k=v,...`` of a canonical label (empty without parameters)."""
    return ",".join(f"{k}={v}" for k, v in parse_spec(label)[1].items())


def panel_title(head: str, detail: str = "") -> str:
    """A panel title of at most :data:`TITLE_MAX` characters: ``head``, then ``detail`` on a second
    line (the parameters that tell variants of one entry apart). What does not fit is cut with an
    ellipsis; the caption file names it in full."""
    ellipsis = "\u2026"
    if len(head) > TITLE_MAX:
        head = head[: TITLE_MAX - 1] + ellipsis
    room = TITLE_MAX - len(head)
    if not detail or room <= 1:
        return head
    if len(detail) > room:
        detail = detail[: room - 1] + ellipsis
    return f"{head}\n{detail}"


def curves_figure(table: pd.DataFrame) -> Figure | None:
    """Robust accuracy vs epsilon, one panel per (task, norm, attack), each norm's panels on rows
    of their own with the norm's ``ensemble`` (the per-patch worst case) first; one line per
    detector x defence. A defence zoo of one attack gets a panel per detector as well when that
    keeps the figure at 8 panels or fewer. On input transforms each epsilon shows the attacker's
    best gradient. None without successful rows."""
    import matplotlib.pyplot as plt

    ok = _ok_float(table)
    if ok.empty:
        return None
    keys = ["task", "detector", "defense", "norm", "attack"]
    order = {k: i for i, k in enumerate(dict.fromkeys(zip(*(ok[c] for c in keys))))}
    # the attacker picks the gradient that works best at each epsilon (input transforms have several)
    ok = ok.sort_values("robust_accuracy", kind="stable").drop_duplicates([*keys, "epsilon_255"])
    ok = ok.assign(_order=[order[k] for k in zip(*(ok[c] for c in keys))])
    ok = ok.sort_values(["_order", "epsilon_255"], kind="stable")
    detectors, defenses = short_labels(list(ok["detector"])), short_labels(list(ok["defense"]))
    attacks = short_labels(list(ok["attack"]))
    tasks = list(dict.fromkeys(ok["task"]))
    blocks = []  # per norm: its panels (task, norm, attack, detector or None)
    for norm in _norms(ok["norm"]):
        here = ok[ok["norm"] == norm]
        names = sorted(dict.fromkeys(here["attack"]), key=lambda a: a != "ensemble")  # the worst case first
        blocks.append(
            [(t, norm, a) for t in tasks for a in names if ((here["task"] == t) & (here["attack"] == a)).any()]
        )
    count = sum(len(b) for b in blocks)
    split = len(detectors) > 1 and len(defenses) > 1 and count * len(detectors) <= 8
    panels = [
        [(t, n, a, d if split else None) for t, n, a in b for d in (detectors if split else [None])] for b in blocks
    ]
    by_defense = len(defenses) > 1  # colour: defence (detector when there is only one defence)
    colors = (
        dict(zip(defenses, _palette(len(defenses)))) if by_defense else dict(zip(detectors, _palette(len(detectors))))
    )
    markers = dict(zip(detectors, MARKERS * len(detectors)))
    styles = dict(zip(detectors, LINESTYLES * len(detectors)))  # marker and line style: the detector
    models = {m: i for i, m in enumerate(dict.fromkeys(zip(table["detector"], table["defense"])))}  # legend order
    widest = max(len(b) for b in panels)
    ncols = min(widest, 4 if widest != 4 or len(panels) > 1 else 2)
    rows_of = [-(-len(b) // ncols) for b in panels]
    nrows = sum(rows_of)
    width = SINGLE if ncols == 1 else DOUBLE
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, 1.6 * nrows + 0.5), squeeze=False, sharey=True)
    for ax in axes.flat:
        ax.set_visible(False)
    largest = float(ok["epsilon_255"].max())
    top = 0
    for block, nrow in zip(panels, rows_of, strict=True):
        for i, (task, norm, attack, only) in enumerate(block):
            ax = axes[top + i // ncols, i % ncols]
            ax.set_visible(True)
            panel = ok[(ok["task"] == task) & (ok["norm"] == norm) & (ok["attack"] == attack)]
            if only is not None:
                panel = panel[panel["detector"] == only]
            groups = sorted(panel.groupby(["detector", "defense"], sort=False), key=lambda kg: models[kg[0]])
            for (detector, defense), g in groups:
                first = g.iloc[0]
                x = [0.0, *g["epsilon_255"]]
                y = [first["clean_accuracy"], *g["robust_accuracy"]]
                low = [first["clean_accuracy_low"], *g["robust_accuracy_low"]]
                high = [first["clean_accuracy_high"], *g["robust_accuracy_high"]]
                color = colors[defense if by_defense else detector]
                label = defenses[defense] if split else f"{detectors[detector]} / {defenses[defense]}"
                ax.plot(x, y, marker=markers[detector], ls=styles[detector], color=color, label=label)
                ax.fill_between(x, low, high, color=color, alpha=0.12, lw=0)
                bad = g[flagged_rows(g).to_numpy()]
                if len(bad):  # a failure flag on the number: it may overstate robustness (docs/flags.md)
                    ax.scatter(bad["epsilon_255"], bad["robust_accuracy"], **FLAG_MARK)
            name = "ensemble" if attack == "ensemble" else parse_spec(attacks[attack])[0]
            head = ", ".join([*([task] if len(tasks) > 1 else []), name, *([detectors[only]] if only else [])])
            detail = "worst case per patch" if attack == "ensemble" else params_text(attacks[attack])
            ax.set_title(panel_title(f"{head} ({NORMS.get(norm, norm)})", detail))
            ax.set_ylim(-0.02, 1.02)
            ax.set_xlim(-0.02 * largest, 1.03 * largest)
            below = i + ncols < len(block)  # another panel of this norm under this one
            ax.tick_params(labelbottom=not below)
            if not below:
                ax.set_xlabel(EPSILON_LABELS.get(norm, f"{norm} \u03b5 (8-bit units)"))
        for r in range(top, top + nrow):
            axes[r, 0].set_ylabel("robust accuracy")
        top += nrow
    _legend(fig, axes, ncol=3 if width == DOUBLE else 1)
    return fig


def legend_entries(axes: Any) -> tuple[list[Any], list[str]]:
    """The legend handles and labels of every axis of a grid, each label once (a figure-level legend)."""
    handles: list[Any] = []
    labels: list[str] = []
    for ax in axes.flat:
        for h, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in labels:
                handles.append(h)
                labels.append(label)
    return handles, labels


def _legend(fig: Figure, axes: np.ndarray, ncol: int, last: Callable[[str], bool] | None = None) -> None:
    """One legend under the grid (entries for which ``last`` holds after the others)."""
    handles, labels = legend_entries(axes)
    if last is not None:
        pairs = sorted(zip(handles, labels), key=lambda hl: last(hl[1]))
        handles, labels = [h for h, _ in pairs], [label for _, label in pairs]
    fig.legend(handles, labels, loc="lower center", ncol=ncol, frameon=False, bbox_to_anchor=(0.5, 0.0))
    rows = -(-len(labels) // ncol)
    height = fig.get_size_inches()[1]
    fig.set_size_inches(fig.get_size_inches()[0], height + 0.12 * rows)
    fig.tight_layout(rect=(0, (0.12 * rows + 0.05) / (height + 0.12 * rows), 1, 1))


def tradeoff_figure(reference: pd.DataFrame, epsilon: float) -> Figure | None:
    """Clean vs robust accuracy at ``epsilon``, one panel per task: colour = detector, marker =
    defence family, lines joining a family's strength sweep (labelled with its strengths)."""
    import matplotlib.pyplot as plt

    rows = reference[np.isclose(reference["epsilon_255"], epsilon)]
    if rows.empty:
        return None
    tasks = list(dict.fromkeys(rows["task"]))
    norm = str(rows["norm"].iloc[0])
    detectors = short_labels(list(rows["detector"]))
    families = defense_families(list(rows["defense"]))
    family_names = sorted(dict.fromkeys(f for f, _ in families.values()), key=lambda f: f != "none")  # none first
    colors = dict(zip(detectors, _palette(len(detectors))))
    markers = dict(zip(family_names, MARKERS * len(family_names)))
    fig, axes = plt.subplots(1, len(tasks), figsize=(SINGLE if len(tasks) == 1 else DOUBLE, 2.6), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        here = rows[rows["task"] == task].assign(
            family=lambda t: [families[d][0] for d in t["defense"]],
            strength=lambda t: [families[d][1] for d in t["defense"]],
        )
        for (detector, family), g in here.groupby(["detector", "family"], sort=False):
            g = g.sort_values("strength", na_position="first")
            ax.errorbar(
                g["clean_accuracy"],
                g["robust_accuracy"],
                yerr=[
                    g["robust_accuracy"] - g["robust_accuracy_low"],
                    g["robust_accuracy_high"] - g["robust_accuracy"],
                ],
                color=colors[detector],
                marker=markers[family],
                ms=5,
                mfc="none",  # hollow: a point under another of the same detector stays visible
                mew=1.0,
                lw=0.8 if len(g) > 1 else 0,
                elinewidth=0.5,
                capsize=0,
                label=None,
            )
            if len(g) > 1:
                for _, r in g.iterrows():
                    ax.annotate(
                        f"{r['strength']:g}",
                        (r["clean_accuracy"], r["robust_accuracy"]),
                        fontsize=5,
                        xytext=(3, 2),
                        textcoords="offset points",
                        color=colors[detector],
                    )
        budget = f"\u03b5 = {epsilon:g}/255 ({NORMS.get(norm, norm)})"
        ax.set_title(panel_title(f"{task}, {budget}" if len(tasks) > 1 else budget))
        ax.set_xlabel("clean accuracy")
        ax.set_ylabel("robust accuracy")
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=c, marker="o", lw=0, label=detectors[d]) for d, c in colors.items()]
    handles += [Line2D([], [], color="0.3", marker=m, mfc="none", lw=0, label=f) for f, m in markers.items()]
    fig.legend(handles=handles, loc="lower center", ncol=3, frameon=False)
    rows_ = -(-len(handles) // 3)
    fig.set_size_inches(fig.get_size_inches()[0], 2.6 + 0.12 * rows_)
    fig.tight_layout(rect=(0, (0.12 * rows_ + 0.05) / (2.6 + 0.12 * rows_), 1, 1))
    return fig


def heatmap_figure(reference: pd.DataFrame, epsilon: float) -> Figure | None:
    """Robust accuracy of every detector x defence at ``epsilon`` (one annotated seaborn heatmap
    per task)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    rows = reference[np.isclose(reference["epsilon_255"], epsilon)]
    if rows.empty:
        return None
    tasks = list(dict.fromkeys(rows["task"]))
    norm = str(rows["norm"].iloc[0])
    detectors = short_labels(list(rows["detector"]))
    defenses = short_labels(sorted(dict.fromkeys(rows["defense"]), key=lambda d: d != "none"))  # none first
    width = SINGLE if len(defenses) <= 4 and len(tasks) == 1 else DOUBLE
    height = 0.3 * len(detectors) + 1.4
    fig, axes = plt.subplots(len(tasks), 1, figsize=(width, height * len(tasks)), squeeze=False)
    for ax, task in zip(axes[:, 0], tasks):
        grid = rows[rows["task"] == task].pivot_table(
            index="detector", columns="defense", values="robust_accuracy", sort=False
        )
        grid = grid.reindex(
            index=[d for d in detectors if d in grid.index], columns=[d for d in defenses if d in grid.columns]
        )
        sns.heatmap(
            grid.rename(index=detectors, columns=defenses),
            ax=ax,
            vmin=0,
            vmax=1,
            cmap="viridis",
            annot=True,
            fmt=".2f",
            annot_kws={"fontsize": 6},
            linewidths=0.5,
            linecolor="white",
            cbar_kws={"label": "robust accuracy", "fraction": 0.05, "pad": 0.03},
        )
        ax.set_xticklabels(ax.get_xticklabels(), rotation=30, ha="right")
        ax.set_yticklabels(ax.get_yticklabels(), rotation=0)
        ax.grid(False)
        ax.set_xlabel("defence")
        ax.set_ylabel("detector")
        budget = f"\u03b5 = {epsilon:g}/255 ({NORMS.get(norm, norm)})"
        ax.set_title(panel_title(f"{task}, {budget}" if len(tasks) > 1 else f"worst case at {budget}"))
    fig.tight_layout()
    return fig


def _show(image: np.ndarray) -> np.ndarray:
    """A C x H x W image as matplotlib shows it: H x W x 3 for colour, H x W for grey."""
    return image.transpose(1, 2, 0) if image.shape[0] == 3 else image[0]


def gallery_figure(entries: list[dict[str, Any]], *, per_source: int = 2, max_sources: int = 6) -> Figure | None:
    """Rows of (clean, adversarial, perturbation x amplification) triplets: ``per_source``
    examples of up to ``max_sources`` sources. Each adversarial image is shown at the smallest
    epsilon that fooled the source detector (the largest when none did); titles give the
    detector's probability of the true class."""
    import matplotlib.pyplot as plt

    entries = [e for e in entries if len(e["arrays"]["label"])][:max_sources]
    if not entries:
        return None
    detectors = short_labels([e["detector"] for e in entries])
    defenses = short_labels([e["defense"] for e in entries])
    ncols = 3 * per_source
    fig, axes = plt.subplots(len(entries), ncols, figsize=(DOUBLE, 1.45 * len(entries) + 0.2), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for r, entry in enumerate(entries):
        a = entry["arrays"]
        classes = entry.get("classes") or []
        for k in range(min(per_source, len(a["label"]))):
            label = int(a["label"][k])
            wrong = a["adv_pred"][:, k] != label
            e = int(wrong.argmax()) if wrong.any() else len(wrong) - 1
            x, adv = a["x"][k].astype(float), a["adv"][e, k].astype(float)
            delta = adv - x
            peak = max(float(np.abs(delta).max()), 1.0)
            amp = 127.5 / peak
            name = classes[label] if label < len(classes) else str(label)
            cmap = None if x.shape[0] == 3 else "gray"
            cells = [
                (_show(x) / 255.0, f"clean ({name})\np = {a['clean_prob'][k]:.2f}"),
                (
                    _show(adv) / 255.0,
                    f"adv. $\\epsilon$ = {a['epsilon_255'][e]:g}/255\np = {a['adv_prob'][e, k]:.2f}"
                    + ("" if wrong.any() else " (not fooled)"),
                ),
                (
                    np.clip(0.5 + _show(delta) * amp / 255.0, 0, 1),
                    f"perturbation x{amp:.0f}\nmax {peak:.0f} level{'s' if peak > 1 else ''}",
                ),
            ]
            for c, (img, title) in enumerate(cells):
                ax = axes[r, 3 * k + c]
                ax.imshow(img, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
                ax.set_title(title, fontsize=5.5, pad=2)
        axes[r, 0].text(
            -0.15,
            0.5,
            f"{detectors[entry['detector']]}\n{defenses[entry['defense']]}",
            rotation=90,
            transform=axes[r, 0].transAxes,
            ha="right",
            va="center",
            fontsize=6,
        )
    fig.suptitle("p: probability of the true class", fontsize=6, y=0.995)
    fig.tight_layout(rect=(0.02, 0, 1, 0.98), h_pad=1.0, w_pad=0.3)
    return fig


def transfer_figure(transfer: pd.DataFrame, epsilon: float) -> Figure | None:
    """Per task: target accuracy on the source's adversarial images (left) and the transfer
    success rate (right), sources as rows, targets as columns, at ``epsilon`` (annotated seaborn
    heatmaps)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    eps = sorted(set(transfer["epsilon_255"].astype(float)))
    if not eps:
        return None
    epsilon = min(eps, key=lambda e: abs(e - epsilon))
    rows = transfer[np.isclose(transfer["epsilon_255"], epsilon)]
    tasks = list(dict.fromkeys(rows["task"]))
    detectors = short_labels([*rows["source_detector"], *rows["target_detector"]])
    defenses = short_labels([*rows["source_defense"], *rows["target_defense"]])
    several = len(set(defenses.values())) > 1

    def label(detector: str, defense: str) -> str:
        return f"{detectors[detector]} / {defenses[defense]}" if several else detectors[detector]

    rows = rows.assign(
        source=[label(d, f) for d, f in zip(rows["source_detector"], rows["source_defense"])],
        target=[label(d, f) for d, f in zip(rows["target_detector"], rows["target_defense"])],
    )
    size = len(set(rows["source"]) | set(rows["target"]))
    height = 0.28 * size + 1.5
    fig, axes = plt.subplots(
        len(tasks), 2, figsize=(DOUBLE if size > 3 else SINGLE * 1.6, height * len(tasks)), squeeze=False
    )
    for (left, right), task in zip(axes, tasks):
        here = rows[rows["task"] == task]
        order = list(dict.fromkeys(here["source"]))
        targets = list(dict.fromkeys(here["target"]))
        for ax, value, title in (
            (left, "target_accuracy", "target accuracy on adversarial images"),
            (right, "transfer_success_rate", "transfer success rate"),
        ):
            grid = here.pivot_table(index="source", columns="target", values=value, sort=False)
            sns.heatmap(
                grid.reindex(index=order, columns=targets),
                ax=ax,
                vmin=0,
                vmax=1,
                cmap="viridis" if value == "target_accuracy" else "magma",
                annot=True,
                fmt=".2f",
                annot_kws={"fontsize": 5.5},
                linewidths=0.5,
                linecolor="white",
                cbar=False,
                yticklabels=ax is left,
            )
            ax.set_xticklabels(ax.get_xticklabels(), rotation=35, ha="right")
            ax.grid(False)
            ax.set_xlabel("target model")
            ax.set_ylabel("")
            ax.set_title(panel_title(title, f"task {task}" if len(tasks) > 1 else ""))
        left.set_yticklabels(left.get_yticklabels(), rotation=0)
        left.set_ylabel(f"source model (crafted at \u03b5 = {epsilon:g}/255)")
    fig.tight_layout()
    return fig


MIN_NORM_COLUMNS = ("cell", "quantized", "postprocess", "epsilon", "epsilon_255", "clean_correct", "min_norm")


def min_norm_curve(samples: pd.DataFrame) -> tuple[list[float], list[float]]:
    """Robust accuracy as a continuous function of e (8-bit units) from one minimum-norm cell.

    ``samples``: the float, unprocessed per-sample rows of one cell at one epsilon (every
    epsilon row carries the same ``min_norm``). A sample is robust at e while it was classified
    correctly clean and its smallest adversarial perturbation is larger than e's budget.
    """
    first = samples.iloc[0]
    to_e = first["epsilon_255"] / first["epsilon"]  # budget in [0, 1] units -> e (linf: 255; l2: 255/sqrt(pixels))
    sizes = np.where(samples["clean_correct"].to_numpy(), samples["min_norm"].to_numpy() * to_e, 0.0)
    n = len(sizes)
    steps = np.sort(sizes[np.isfinite(sizes)])
    xs, ys = [0.0], [float(np.count_nonzero(sizes > 0) / n)]
    for size in steps[steps > 0]:
        xs += [float(size), float(size)]
        ys += [ys[-1], ys[-1] - 1.0 / n]
    return xs, ys


def min_norm_figure(table: pd.DataFrame, samples: pd.DataFrame) -> Figure | None:
    """Continuous robustness curves of the minimum-norm attacks (one run each), beside the robust
    accuracy of the PGD sweeps of the same norm at the matrix's epsilons; one panel per (task,
    detector, defence, gradient) and norm: a row per model, a column per norm (with one norm, the
    models side by side). None without minimum-norm cells."""
    import matplotlib.pyplot as plt

    ok = _ok_float(table)
    minimum = ok[ok["minimum_norm"].astype(bool)]
    if minimum.empty:
        return None
    models = list(dict.fromkeys(zip(minimum["task"], minimum["detector"], minimum["defense"], minimum["gradient"])))
    norms = _norms(minimum["norm"])
    panels = [(m, n) for m in models for n in norms]
    attacks = short_labels(list(minimum["attack"]))
    detectors, defenses = short_labels(list(minimum["detector"])), short_labels(list(minimum["defense"]))
    colors = dict(zip(attacks, _palette(len(attacks)), strict=True))
    libraries = list(dict.fromkeys(minimum["library"].astype(str)))  # line style: the library
    sweep_names = list(
        dict.fromkeys(
            str(a).split("[")[0]
            for a in ok.loc[(ok["threat"] == "white-box") & ~ok["minimum_norm"].astype(bool), "attack"]
            if "pgd" in str(a)
        )
    )
    sweep_markers = dict(zip(sweep_names, MARKERS * len(sweep_names)))
    ncols = len(norms) if len(norms) > 1 else min(len(panels), 2)
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(DOUBLE if ncols > 1 else SINGLE, 2.0 * nrows + 0.4), squeeze=False, sharey=True
    )
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    flat = samples[(samples["quantized"] == "float") & (samples["postprocess"] == "none")]
    largest = float(ok["epsilon_255"].max())
    several_tasks = len({m[0] for m in models}) > 1
    for i, (ax, ((task, detector, defense, gradient), norm)) in enumerate(zip(axes.flat, panels, strict=False)):
        here = ok[(ok["task"] == task) & (ok["detector"] == detector) & (ok["defense"] == defense)]
        here = here[(here["gradient"] == gradient) & (here["norm"] == norm)]
        for attack in attacks:
            rows = here[here["attack"] == attack]
            if rows.empty or not rows["minimum_norm"].astype(bool).any():
                continue
            cell = flat[(flat["cell"] == rows["cell"].iloc[0]) & (flat["epsilon_255"] == rows["epsilon_255"].min())]
            xs, ys = min_norm_curve(cell)
            style = LINESTYLES[libraries.index(str(rows["library"].iloc[0])) % len(LINESTYLES)]
            ax.plot(xs, ys, color=colors[attack], ls=style, label=attacks[attack])
        sweeps = here[(here["threat"] == "white-box") & ~here["minimum_norm"].astype(bool)]
        sweeps = sweeps[sweeps["attack"].str.contains("pgd")]
        for attack, g in sweeps.groupby("attack", sort=False):
            name = str(attack).split("[")[0]
            g = g.sort_values("epsilon_255")
            ax.plot(
                g["epsilon_255"],
                g["robust_accuracy"],
                sweep_markers[name],
                color="black",
                mfc="none",
                ms=4,
                label=f"{name} sweep",
            )
        head = ", ".join([*([task] if several_tasks else []), detectors[detector], defenses[defense]])
        extra = "" if gradient == "exact" else f", {gradient}"
        ax.set_title(panel_title(f"{head} ({NORMS.get(norm, norm)}{extra})"))
        ax.set_xlim(0, largest * 1.05)
        ax.set_ylim(-0.02, 1.02)
        below = i + ncols < len(panels)  # a panel of the same column under this one
        ax.tick_params(labelbottom=not below)
        if not below:
            ax.set_xlabel(EPSILON_LABELS.get(norm, f"{norm} \u03b5 (8-bit units)"))
    for ax in axes[:, 0]:
        ax.set_ylabel("robust accuracy")
    _legend(fig, axes, ncol=3 if ncols > 1 else 2, last=lambda label: label.endswith(" sweep"))
    return fig


def figure_problems(fig: Figure) -> list[str]:
    """What breaks the figures' rules (empty when none does): a visible panel with nothing drawn,
    a title over :data:`TITLE_MAX` characters, two titles drawn over each other, an axis that shows
    tick labels without a label.
    Panels without axes (the gallery's images) need no labels; inner panels of a shared grid show
    no tick labels and take the label of their row's or column's outer panel."""
    fig.canvas.draw()
    problems = []
    titles: list[tuple[Any, str]] = [(ax, ax.get_title()) for ax in fig.axes]
    if fig.get_suptitle():
        titles.append((None, fig.get_suptitle()))
    for ax, title in titles:
        if (ax is None or ax.get_visible()) and len(title.replace("\n", "")) > TITLE_MAX:
            problems.append(f"title over {TITLE_MAX} characters: {title!r}")
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    titled = [ax for ax in fig.axes if ax.get_visible() and ax.get_title()]
    boxes = [ax.title.get_window_extent(renderer) for ax in titled]
    for i, box in enumerate(boxes):
        problems += [
            f"titles {titled[i].get_title()!r} and {titled[j].get_title()!r} overlap"
            for j in range(i + 1, len(boxes))
            if box.overlaps(boxes[j])
        ]
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        name = repr(ax.get_title() or ax.get_label())
        if not (ax.lines or ax.collections or ax.images or ax.patches or ax.texts):
            problems.append(f"panel {name} is empty")
        if not ax.axison:
            continue
        for which, axis, label in (("x", ax.xaxis, ax.get_xlabel()), ("y", ax.yaxis, ax.get_ylabel())):
            labels = [
                t
                for tick in axis.get_major_ticks()
                for t in (tick.label1, tick.label2)
                if tick.get_visible() and t.get_visible() and t.get_text()
            ]
            if labels and not label:
                problems.append(f"panel {name}: the {which} axis shows tick labels but has no label")
    return problems


def caption_text(name: str, labels: dict[str, dict[str, str]], note: str = "") -> str:
    """A figure's caption file: the caption, then for each kind of label (attacks, detectors,
    defences) every shortened label with the full canonical name it stands for."""
    lines = [f"{name}: {CAPTIONS.get(name, '')}{note}".rstrip(), ""]
    for kind, names in labels.items():
        shortened = {short: full for full, short in names.items() if short != full}
        if shortened:
            lines.append(f"{kind}:")
            lines += [f"  {short} = {full}" for short, full in shortened.items()]
    if len(lines) == 2:
        lines.append("Every label is the entry's full canonical name.")
    return "\n".join(lines) + "\n"


def save_figure(fig: Figure, stem: Path, caption: str | None = None) -> list[Path]:
    """Write stem.pdf and stem.png atomically (and ``caption`` to stem.caption.txt); close the figure."""
    import matplotlib.pyplot as plt

    paths = [stem.with_suffix(".pdf"), stem.with_suffix(".png")]
    for path in paths:
        atomic_write(path, functools.partial(fig.savefig, format=path.suffix[1:], bbox_inches="tight", pad_inches=0.02))
    plt.close(fig)
    if caption is not None:
        paths.append(stem.with_suffix(".caption.txt"))
        atomic_write_text(paths[-1], caption)
    return paths


def too_small(reference: pd.DataFrame, name: str) -> str | None:
    """Why a single-epsilon figure would show next to nothing at this matrix's size (None when
    it is worth drawing): a heatmap needs two detectors and two defences of one task, a trade-off
    a detector with two defences."""
    sizes = reference.groupby("task", sort=False).agg(
        detectors=("detector", "nunique"), defenses=("defense", "nunique")
    )
    if name == "heatmap" and not ((sizes["detectors"] > 1) & (sizes["defenses"] > 1)).any():
        shape = ", ".join(f"{t}: {r.detectors} x {r.defenses}" for t, r in sizes.iterrows())
        return (
            f"a heatmap needs at least 2 detectors x 2 defences of one task ({shape}); "
            "the accuracy tables hold these numbers"
        )
    if name == "tradeoff" and not (reference.groupby(["task", "detector"])["defense"].nunique() > 1).any():
        return "no detector has a second defence to trade clean against robust accuracy with"
    return None


RUN_FIGURES_DIGEST = "figures.digest"  # beside a run's own figures: what they were drawn from


def run_figures_digest(folder: str | Path) -> str:
    """A digest of what a run's own figures (:data:`RUN_FIGURES`) are drawn from: the folder's
    matrix and samples tables, the code of this package and matplotlib's version."""
    import hashlib

    import matplotlib

    digest = hashlib.sha256(matplotlib.__version__.encode())
    for path in [*(Path(folder) / name for name in ("matrix.parquet", "samples.parquet")), *_OUTPUT_CODE]:
        digest.update(path.name.encode())
        digest.update(path.read_bytes() if path.is_file() else b"-")
    return digest.hexdigest()


_OUTPUT_CODE = tuple(sorted(Path(__file__).parent.glob("*.py")))


def make_run_figures(folder: str | Path) -> FigureOutput | None:
    """Draw a run's own figures into its folder, unless they are there already, drawn from the same
    tables by the same code (a warm rerun rewrites identical tables): then None. Drawing is
    most of a warm rerun's time."""
    folder = Path(folder)
    digest = run_figures_digest(folder)
    kept = folder / RUN_FIGURES_DIGEST
    if kept.is_file():
        lines = kept.read_text().splitlines()
        if lines and lines[0] == digest and all((folder / name).is_file() for name in lines[1:]):
            return None
    out = make_figures(load_results(folder, check_samples=False), out_dir=folder, only=RUN_FIGURES)
    files = [path.name for paths in out.written.values() for path in paths]
    atomic_write_text(kept, "\n".join([digest, *files]) + "\n")
    return out


def make_figures(
    results: Results | str | Path,
    *,
    epsilon: float | None = None,
    out_dir: str | Path | None = None,
    only: tuple[str, ...] = FIGURES,
) -> FigureOutput:
    """Draw every figure the results folder has the inputs for into ``out_dir`` (default
    ``RESULTS/figures``), each with its caption file; the others are listed in ``skipped`` with the
    reason."""
    results = results if isinstance(results, Results) else load_results(results)
    out = Path(out_dir) if out_dir is not None else results.folder / "figures"
    reference = reference_rows(results.headline)  # across the training seeds where there are several
    report = FigureOutput()
    if not reference.empty:
        report.epsilon = pick_epsilon(reference, epsilon)
    single = reference[np.isclose(reference["epsilon_255"], report.epsilon)] if report.epsilon is not None else None
    ok = _ok_float(results.headline)
    builders: dict[str, Callable[[], Figure | str | None]] = {
        "curves": lambda: curves_figure(results.headline),
        "tradeoff": lambda: _single("tradeoff", tradeoff_figure, reference, report.epsilon),
        "heatmap": lambda: _single("heatmap", heatmap_figure, reference, report.epsilon),
        "gallery": lambda: (
            gallery_figure(results.read_examples()) if results.examples else f"no examples.npz ({_RERUN})"
        ),
        "transfer": lambda: _transfer(results, report.epsilon),
        "min-norm-curves": lambda: _min_norm(results),
    }
    labels: dict[str, Callable[[], dict[str, dict[str, str]]]] = {
        "curves": lambda: _labels(ok, attack="attack", detector="detector", defense="defense"),
        "tradeoff": lambda: _labels(single, detector="detector", defense="defense"),
        "heatmap": lambda: _labels(single, detector="detector", defense="defense"),
        "gallery": lambda: _labels(
            pd.DataFrame([{k: e[k] for k in ("detector", "defense")} for e in results.read_examples()]),
            detector="detector",
            defense="defense",
        ),
        "transfer": lambda: _labels(
            results.transfer,
            detector=["source_detector", "target_detector"],
            defense=["source_defense", "target_defense"],
        ),
        "min-norm-curves": lambda: _labels(
            ok[ok["minimum_norm"].astype(bool)], attack="attack", detector="detector", defense="defense"
        ),
    }
    seeds = len(results.seeds)

    def note(name: str) -> str:
        if seeds == 1:
            return ""
        if name == "min-norm-curves":
            return f" With {seeds} training seeds: the first seed's models."
        return f" With {seeds} training seeds: the mean over the seeds, intervals spanning every seed's."

    with paper_style():
        for name in only:
            fig = builders[name]()
            if isinstance(fig, str):
                report.skipped[name] = fig
            elif fig is None:
                report.skipped[name] = "no successful rows to draw"
            else:
                report.labels[name] = labels[name]()
                report.written[name] = save_figure(fig, out / name, caption_text(name, report.labels[name], note(name)))
    return report


LABEL_KINDS = {"attack": "Attacks", "detector": "Detectors", "defense": "Defences"}


def _labels(rows: pd.DataFrame | None, **columns: str | list[str]) -> dict[str, dict[str, str]]:
    """The short label of every name a figure shows, per kind (``attack=`` column or columns...)."""
    out: dict[str, dict[str, str]] = {}
    if rows is None or rows.empty:
        return out
    for kind, cols in columns.items():
        names = [str(v) for c in ([cols] if isinstance(cols, str) else cols) if c in rows for v in rows[c]]
        out[LABEL_KINDS[kind]] = short_labels([n for n in names if n != "ensemble"])
    return out


def _single(
    name: str, draw: Callable[[pd.DataFrame, float], Figure | None], reference: pd.DataFrame, epsilon: float | None
) -> Figure | str | None:
    if epsilon is None:
        return None
    return too_small(reference, name) or draw(reference, epsilon)


def _transfer(results: Results, epsilon: float | None) -> Figure | str | None:
    transfer = results.transfer
    if transfer is None or transfer.empty:
        return f"no transfer.parquet ({_RERUN})"
    if (transfer.groupby("task")["target_model"].nunique() < 2).all():
        return "one model per task: nothing for its adversarial images to transfer to"
    return transfer_figure(transfer, epsilon or 0.0)


def _min_norm(results: Results) -> Figure | str | None:
    table = results.table
    if not table["minimum_norm"].astype(bool).any():
        return "no minimum-norm attack in the matrix"
    samples = results.read_samples(unprocessed=True, columns=MIN_NORM_COLUMNS)
    if samples is None:
        return "no samples.parquet"
    if len(results.seeds) > 1:  # per-sample norms are one training's: the first seed's
        table = table[table["training_seed"] == results.seeds[0]]
    return min_norm_figure(table, samples)
