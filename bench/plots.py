"""Figures drawn from the tidy table only (never by re-running an attack)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd


def plot_curves(table: pd.DataFrame, stem: Path) -> list[Path]:
    """Robust accuracy against epsilon with 95% Wilson bands: one panel per (task, attack),
    one line per detector x defence; epsilon 0 shows clean accuracy. Writes stem.pdf and stem.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    ok = table[(table["error"].fillna("") == "") & (table["quantized"] == "float") & (table["postprocess"] == "none")]
    tasks = list(dict.fromkeys(ok["task"]))
    attacks = list(dict.fromkeys(ok["attack"]))
    # an input transform is attacked with two gradients: each is its own line
    defense = ok["defense"].where(ok["gradient"].fillna("exact") == "exact", ok["defense"] + " (" + ok["gradient"] + ")")
    ok = ok.assign(defense=defense, model=ok["detector"] + " / " + defense)
    detectors, defenses = list(dict.fromkeys(ok["detector"])), list(dict.fromkeys(ok["defense"]))
    colors = dict(zip(detectors, sns.color_palette("colorblind", len(detectors))))  # colour: detector
    dashes = dict(zip(defenses, ["-", "--", ":", "-.", (0, (5, 1, 1, 1)), (0, (1, 3))] * len(defenses)))  # line: defence
    ncols = min(len(attacks), 4)
    nrows = len(tasks) * -(-len(attacks) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 2.8 * nrows + 0.8), squeeze=False, sharey=True)
    for ax in axes.flat:
        ax.set_visible(False)
    for t, task in enumerate(tasks):
        for a, attack in enumerate(attacks):
            row, col = t * (-(-len(attacks) // ncols)) + a // ncols, a % ncols
            ax = axes[row, col]
            ax.set_visible(True)
            panel = ok[(ok["task"] == task) & (ok["attack"] == attack)]
            for model, g in panel.groupby("model", sort=False):
                g = g.sort_values("epsilon_255")
                first = g.iloc[0]
                color, dash = colors[first["detector"]], dashes[first["defense"]]
                x = [0.0, *g["epsilon_255"]]
                y = [first["clean_accuracy"], *g["robust_accuracy"]]
                low = [first["clean_accuracy_low"], *g["robust_accuracy_low"]]
                high = [first["clean_accuracy_high"], *g["robust_accuracy_high"]]
                ax.plot(x, y, marker="o", ms=3, lw=1.2, color=color, linestyle=dash, label=model)
                ax.fill_between(x, low, high, color=color, alpha=0.15, lw=0)
            ax.set_title(f"{task}\n{attack}", fontsize=7)
            ax.set_xlabel("e (Linf e/255; L2 e/255*sqrt(pixels))", fontsize=7)
            ax.set_ylim(-0.02, 1.02)
            ax.grid(alpha=0.3)
            if col == 0:
                ax.set_ylabel("accuracy (robust; clean at 0)", fontsize=8)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 2), fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.08 + 0.03 * ((len(labels) - 1) // 2), 1, 1))
    paths = [stem.with_suffix(".pdf"), stem.with_suffix(".png")]
    from bench.cache import atomic_write

    for path in paths:
        atomic_write(path, lambda f, p=path: fig.savefig(f, format=p.suffix[1:], dpi=150))
    plt.close(fig)
    return paths


def min_norm_curve(samples: pd.DataFrame) -> tuple[list[float], list[float]]:
    """Robust accuracy as a continuous function of e (8-bit units) from one minimum-norm cell.

    ``samples``: the float, unprocessed per-sample rows of one cell at one epsilon (every
    epsilon row carries the same ``min_norm``). A sample is robust at e while it was classified
    correctly clean and its smallest adversarial perturbation is larger than e's budget.
    """
    import numpy as np

    first = samples.iloc[0]
    to_e = first["epsilon_255"] / first["epsilon"]  # budget in [0, 1] units -> e (linf: 255; l2: 255/sqrt(pixels))
    sizes = np.where(samples["clean_correct"].to_numpy(), samples["min_norm"].to_numpy() * to_e, 0.0)
    n = len(sizes)
    steps = np.sort(sizes[np.isfinite(sizes)])
    xs, ys = [0.0], [float(np.count_nonzero(sizes > 0) / n)]
    for s in steps[steps > 0]:
        xs += [float(s), float(s)]
        ys += [ys[-1], ys[-1] - 1.0 / n]
    return xs, ys


def plot_min_norm_curves(table: pd.DataFrame, samples: pd.DataFrame, stem: Path) -> list[Path]:
    """Continuous robustness curves of the minimum-norm attacks (one run each), beside the robust
    accuracy of the strongest fixed-epsilon PGD of the same norm at the matrix's epsilons.
    One panel per (task, detector, defence); writes stem.pdf and stem.png (nothing without
    minimum-norm cells)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    ok = table[(table["error"].fillna("") == "") & (table["quantized"] == "float") & (table["postprocess"] == "none")]
    minimum = ok[ok["minimum_norm"].astype(bool)]
    if minimum.empty:
        return []
    panels = list(dict.fromkeys(zip(minimum["task"], minimum["detector"], minimum["defense"], minimum["gradient"])))
    attacks = list(dict.fromkeys(minimum["attack"]))
    colors = dict(zip(attacks, sns.color_palette("colorblind", len(attacks))))
    ncols = min(len(panels), 2)
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.0 * nrows + 1.0), squeeze=False, sharey=True)
    for ax in axes.flat:
        ax.set_visible(False)
    flat = samples[(samples["quantized"] == "float") & (samples["postprocess"] == "none")]
    for ax, (task, detector, defense, gradient) in zip(axes.flat, panels):
        ax.set_visible(True)
        here = ok[(ok["task"] == task) & (ok["detector"] == detector) & (ok["defense"] == defense)
                  & (ok["gradient"] == gradient)]  # fmt: skip
        for attack in attacks:
            rows = here[here["attack"] == attack]
            if rows.empty:
                continue
            cell = flat[(flat["cell"] == rows["cell"].iloc[0]) & (flat["epsilon_255"] == rows["epsilon_255"].min())]
            xs, ys = min_norm_curve(cell)
            norm = rows["norm"].iloc[0]
            ax.plot(xs, ys, color=colors[attack], lw=1.2, label=f"{attack} ({norm})")
        for norm, style in (("linf", "o"), ("l2", "s")):
            pgd = here[(here["threat"] == "white-box") & ~here["minimum_norm"].astype(bool) & (here["norm"] == norm)
                       & here["attack"].str.contains("pgd")]  # fmt: skip
            for attack, g in pgd.groupby("attack", sort=False):
                g = g.sort_values("epsilon_255")
                ax.plot(g["epsilon_255"], g["robust_accuracy"], style, color="black", ms=4, mfc="none",
                        label=f"{attack.split('[')[0]} sweep ({norm})")  # fmt: skip
        ax.set_title(f"{task} | {detector.split('[')[0]} | {defense}" + ("" if gradient == "exact" else f" ({gradient})"),
                     fontsize=7)  # fmt: skip
        ax.set_xlabel("e (Linf e/255; L2 e/255*sqrt(pixels))", fontsize=7)
        ax.set_xlim(0, float(ok["epsilon_255"].max()) * 1.05)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    handles, labels = legend_entries(axes)
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=6, frameon=False)
    fig.tight_layout(rect=(0, 0.06 + 0.025 * (len(labels) // 2), 1, 1))
    paths = [stem.with_suffix(".pdf"), stem.with_suffix(".png")]
    from bench.cache import atomic_write

    for path in paths:
        atomic_write(path, lambda f, p=path: fig.savefig(f, format=p.suffix[1:], dpi=150))
    plt.close(fig)
    return paths


def legend_entries(axes: Any) -> tuple[list[Any], list[str]]:
    """The legend handles and labels of every axis of a grid, each label once (a figure-level legend)."""
    handles: list[Any] = []
    labels: list[str] = []
    for ax in axes.flat:
        for h, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels:
                handles.append(h)
                labels.append(label)
    return handles, labels
