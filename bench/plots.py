"""Figures drawn from the tidy table only (never by re-running an attack)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def plot_curves(table: pd.DataFrame, stem: Path) -> list[Path]:
    """Robust accuracy against epsilon with 95% Wilson bands: one panel per (task, attack),
    one line per detector x defence; epsilon 0 shows clean accuracy. Writes stem.pdf and stem.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    ok = table[table["error"].fillna("") == ""]
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
            ax.set_xlabel("epsilon (x/255, Linf)", fontsize=8)
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
