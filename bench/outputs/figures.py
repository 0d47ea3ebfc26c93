"""Paper figures from a finished run's folder (``python -m bench figures RESULTS_DIR``).

One style for every figure, sized for a two-column paper (:data:`SINGLE` = 3.5 in, one column;
:data:`DOUBLE` = 7.2 in, both), TrueType fonts in the PDFs. Each figure is built from the files
of the results folder only (the tidy table, transfer.parquet, examples.npz); a figure whose
input the folder lacks is skipped with a note, never computed by re-running an attack.

- ``curves``: robust accuracy against epsilon (clean accuracy at 0) with 95% Wilson bands, one
  panel per task x attack, colour = defence, marker = detector;
- ``tradeoff``: clean against robust accuracy at one epsilon, one point per detector x defence,
  lines joining a defence family's strength sweep (``grad-penalty[lambda=...]``);
- ``heatmap``: detector x defence robust accuracy at one epsilon;
- ``gallery``: clean patch, 8-bit adversarial patch and amplified perturbation with the
  detector's probability of the true class;
- ``transfer``: accuracy of every target detector on adversarial images crafted on every source
  detector of the same task, and the transfer success rate;
- ``min-norm-curves``: the continuous robustness curve of each minimum-norm attack (one run gives
  every epsilon) beside the PGD sweep of the same norm.

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

from bench.core.cache import atomic_write
from bench.core.schema import flagged_rows
from bench.outputs.formats import Results, load_results
from bench.outputs.summary import defense_families, pick_epsilon, reference_rows, short_labels

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SINGLE = 3.5  # inches: one column of a two-column paper
DOUBLE = 7.2  # inches: the full text width
FIGURES = ("curves", "tradeoff", "heatmap", "gallery", "transfer", "min-norm-curves")
RUN_FIGURES = ("curves", "min-norm-curves")  # drawn into a run's own folder after the run
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "<", ">", "*"]
_RERUN = "a run writes it when its matrix has a white-box fixed-epsilon Linf attack; rerun to add it"

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
    """What ``make_figures`` did: files written per figure, and why the others were skipped."""

    epsilon: float | None = None
    written: dict[str, list[Path]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


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


def curves_figure(table: pd.DataFrame) -> Figure | None:
    """Robust accuracy vs epsilon, one panel per (task, attack) - and per detector when that keeps
    the figure at 8 panels or fewer, so a defence zoo stays readable. On input transforms each
    epsilon shows the attacker's best gradient. None without successful rows."""
    import matplotlib.pyplot as plt

    ok = _ok_float(table)
    ok = ok[ok["threat"] != "ensemble"] if (ok["threat"] != "ensemble").any() else ok
    if ok.empty:
        return None
    order = {k: i for i, k in enumerate(dict.fromkeys(zip(ok["task"], ok["detector"], ok["defense"], ok["attack"])))}
    # the attacker picks the gradient that works best at each epsilon (input transforms have several)
    ok = ok.sort_values("robust_accuracy", kind="stable")
    ok = ok.drop_duplicates(["task", "detector", "defense", "attack", "epsilon_255"])
    ok = ok.assign(_order=[order[k] for k in zip(ok["task"], ok["detector"], ok["defense"], ok["attack"])])
    ok = ok.sort_values(["_order", "epsilon_255"], kind="stable")
    detectors, defenses = short_labels(list(ok["detector"])), short_labels(list(ok["defense"]))
    attacks = short_labels(list(ok["attack"]))
    pairs = list(dict.fromkeys(zip(ok["task"], ok["attack"])))
    split = len(detectors) > 1 and len(defenses) > 1 and len(pairs) * len(detectors) <= 8
    panels = [(t, a, d if split else None) for t, a in pairs for d in (detectors if split else [None])]
    by_defense = len(defenses) > 1  # colour: defence (detector when there is only one defence)
    colors = (
        dict(zip(defenses, _palette(len(defenses)))) if by_defense else dict(zip(detectors, _palette(len(detectors))))
    )
    markers = dict(zip(detectors, MARKERS * len(detectors)))
    ncols = min(len(panels), 4 if len(panels) != 4 else 2)
    nrows = -(-len(panels) // ncols)
    width = SINGLE if ncols == 1 else DOUBLE
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, 1.55 * nrows + 0.5), squeeze=False, sharex=True, sharey=True)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    several_tasks = len(set(ok["task"])) > 1
    for ax, (task, attack, only) in zip(axes.flat, panels):
        panel = ok[(ok["task"] == task) & (ok["attack"] == attack)]
        if only is not None:
            panel = panel[panel["detector"] == only]
        for (detector, defense), g in panel.groupby(["detector", "defense"], sort=False):
            first = g.iloc[0]
            x = [0.0, *g["epsilon_255"]]
            y = [first["clean_accuracy"], *g["robust_accuracy"]]
            low = [first["clean_accuracy_low"], *g["robust_accuracy_low"]]
            high = [first["clean_accuracy_high"], *g["robust_accuracy_high"]]
            color = colors[defense if by_defense else detector]
            label = defenses[defense] if split else f"{detectors[detector]} / {defenses[defense]}"
            ax.plot(x, y, marker=markers[detector], color=color, label=label)
            ax.fill_between(x, low, high, color=color, alpha=0.12, lw=0)
            bad = g[flagged_rows(g).to_numpy()]
            if len(bad):  # a failure flag on the number: it may overstate robustness (docs/flags.md)
                ax.scatter(bad["epsilon_255"], bad["robust_accuracy"], **FLAG_MARK)
        title = [task] if several_tasks else []
        title += [attacks[attack]] + ([detectors[only]] if only is not None else [])
        ax.set_title(" | ".join(title))
        ax.set_ylim(-0.02, 1.02)
    for col in range(ncols):  # x labels under the lowest panel of each column
        bottom = axes[max(r for r in range(nrows) if axes[r, col].get_visible()), col]
        bottom.set_xlabel(r"$\epsilon$ (8-bit units)")
        bottom.xaxis.set_tick_params(labelbottom=True)
    for ax in axes[:, 0]:
        ax.set_ylabel("robust accuracy")
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


def _legend(fig: Figure, axes: np.ndarray, ncol: int) -> None:
    handles, labels = legend_entries(axes)
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
                ms=4,
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
        ax.set_title(f"{task}, $\\epsilon$ = {epsilon:g}/255" if len(tasks) > 1 else f"$\\epsilon$ = {epsilon:g}/255")
        ax.set_xlabel("clean accuracy")
        ax.set_ylabel("robust accuracy")
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=c, marker="o", lw=0, label=detectors[d]) for d, c in colors.items()]
    handles += [Line2D([], [], color="0.3", marker=m, lw=0, label=f) for f, m in markers.items()]
    fig.legend(handles=handles, loc="lower center", ncol=3, frameon=False)
    rows_ = -(-len(handles) // 3)
    fig.set_size_inches(fig.get_size_inches()[0], 2.6 + 0.12 * rows_)
    fig.tight_layout(rect=(0, (0.12 * rows_ + 0.05) / (2.6 + 0.12 * rows_), 1, 1))
    return fig


def heatmap_figure(reference: pd.DataFrame, epsilon: float) -> Figure | None:
    """Robust accuracy of every detector x defence at ``epsilon`` (one panel per task)."""
    import matplotlib.pyplot as plt

    rows = reference[np.isclose(reference["epsilon_255"], epsilon)]
    if rows.empty:
        return None
    tasks = list(dict.fromkeys(rows["task"]))
    detectors, defenses = short_labels(list(rows["detector"])), short_labels(list(rows["defense"]))
    ncol = len(defenses)
    width = SINGLE if ncol <= 4 and len(tasks) == 1 else DOUBLE
    fig, axes = plt.subplots(len(tasks), 1, figsize=(width, (0.3 * len(detectors) + 1.3) * len(tasks)), squeeze=False)
    for ax, task in zip(axes[:, 0], tasks):
        grid = rows[rows["task"] == task].pivot_table(
            index="detector", columns="defense", values="robust_accuracy", sort=False
        )
        grid = grid.reindex(
            index=[d for d in detectors if d in grid.index], columns=[d for d in defenses if d in grid.columns]
        )
        image = ax.imshow(grid.to_numpy(dtype=float), vmin=0, vmax=1, cmap="viridis", aspect="auto")
        for (i, j), v in np.ndenumerate(grid.to_numpy(dtype=float)):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6, color="white" if v < 0.6 else "black")
        ax.set_xticks(range(grid.shape[1]), [defenses[d] for d in grid.columns], rotation=30, ha="right")
        ax.set_yticks(range(grid.shape[0]), [detectors[d] for d in grid.index])
        ax.grid(False)
        ax.set_title(f"{task}: robust accuracy at $\\epsilon$ = {epsilon:g}/255")
        fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02)
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
    fig.suptitle("p: the detector's probability of the true class", fontsize=6, y=0.995)
    fig.tight_layout(rect=(0.02, 0, 1, 0.98), h_pad=1.0, w_pad=0.3)
    return fig


def transfer_figure(transfer: pd.DataFrame, epsilon: float) -> Figure | None:
    """Per task: target accuracy on the source's adversarial images (left) and the transfer
    success rate (right), sources as rows, targets as columns, at ``epsilon``."""
    import matplotlib.pyplot as plt

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
    height = 0.28 * size + 1.4
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
            grid = grid.reindex(index=order, columns=targets)
            data = grid.to_numpy(dtype=float)
            ax.imshow(data, vmin=0, vmax=1, cmap="viridis" if value == "target_accuracy" else "magma", aspect="auto")
            for (i, j), v in np.ndenumerate(data):
                if np.isfinite(v):
                    ax.text(
                        j, i, f"{v:.2f}", ha="center", va="center", fontsize=5.5, color="white" if v < 0.6 else "black"
                    )
            ax.set_xticks(range(len(targets)), targets, rotation=35, ha="right")
            ax.set_yticks(range(len(order)), order if ax is left else [])
            ax.grid(False)
            ax.set_xlabel("target detector")
            ax.set_title(f"{task}: {title}" if len(tasks) > 1 else title)
        left.set_ylabel(f"source (crafted at $\\epsilon$ = {epsilon:g}/255)")
    fig.tight_layout()
    return fig


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
    detector, defence, gradient). None without minimum-norm cells."""
    import matplotlib.pyplot as plt

    ok = _ok_float(table)
    minimum = ok[ok["minimum_norm"].astype(bool)]
    if minimum.empty:
        return None
    panels = list(dict.fromkeys(zip(minimum["task"], minimum["detector"], minimum["defense"], minimum["gradient"])))
    attacks = short_labels(list(minimum["attack"]))
    detectors, defenses = short_labels(list(minimum["detector"])), short_labels(list(minimum["defense"]))
    colors = dict(zip(attacks, _palette(len(attacks)), strict=True))
    ncols = min(len(panels), 2)
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(DOUBLE if ncols > 1 else SINGLE, 2.0 * nrows + 0.4), squeeze=False, sharey=True
    )
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    flat = samples[(samples["quantized"] == "float") & (samples["postprocess"] == "none")]
    largest = float(ok["epsilon_255"].max())
    for ax, (task, detector, defense, gradient) in zip(axes.flat, panels, strict=False):
        here = ok[(ok["task"] == task) & (ok["detector"] == detector) & (ok["defense"] == defense)]
        here = here[here["gradient"] == gradient]
        for attack in attacks:
            rows = here[here["attack"] == attack]
            if rows.empty:
                continue
            cell = flat[(flat["cell"] == rows["cell"].iloc[0]) & (flat["epsilon_255"] == rows["epsilon_255"].min())]
            xs, ys = min_norm_curve(cell)
            ax.plot(xs, ys, color=colors[attack], label=f"{attacks[attack]} ({rows['norm'].iloc[0]})")
        sweeps = here[(here["threat"] == "white-box") & ~here["minimum_norm"].astype(bool)]
        sweeps = sweeps[sweeps["attack"].str.contains("pgd")]
        for (attack, norm), g in sweeps.groupby(["attack", "norm"], sort=False):
            marker = "o" if norm == "linf" else "s"
            g = g.sort_values("epsilon_255")
            name = str(attack).split("[")[0]
            ax.plot(
                g["epsilon_255"],
                g["robust_accuracy"],
                marker,
                color="black",
                mfc="none",
                label=f"{name} sweep ({norm})",
            )
        title = f"{task} | {detectors[detector]} | {defenses[defense]}" + (
            "" if gradient == "exact" else f" ({gradient})"
        )
        ax.set_title(title)
        ax.set_xlim(0, largest * 1.05)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel(r"$\epsilon$ (8-bit units; L2: per pixel)")
    for ax in axes[:, 0]:
        ax.set_ylabel("robust accuracy")
    _legend(fig, axes, ncol=2)
    return fig


def save_figure(fig: Figure, stem: Path) -> list[Path]:
    """Write stem.pdf and stem.png atomically; close the figure."""
    import matplotlib.pyplot as plt

    paths = [stem.with_suffix(".pdf"), stem.with_suffix(".png")]
    for path in paths:
        atomic_write(path, functools.partial(fig.savefig, format=path.suffix[1:], bbox_inches="tight", pad_inches=0.02))
    plt.close(fig)
    return paths


def make_figures(
    results: Results | str | Path,
    *,
    epsilon: float | None = None,
    out_dir: str | Path | None = None,
    only: tuple[str, ...] = FIGURES,
) -> FigureOutput:
    """Draw every figure the results folder has the inputs for into ``out_dir`` (default
    ``RESULTS/figures``); the others are listed in ``skipped`` with the reason."""
    results = results if isinstance(results, Results) else load_results(results)
    out = Path(out_dir) if out_dir is not None else results.folder / "figures"
    reference = reference_rows(results.headline)  # across the training seeds where there are several
    report = FigureOutput()
    if not reference.empty:
        report.epsilon = pick_epsilon(reference, epsilon)
    builders: dict[str, Callable[[], Figure | str | None]] = {
        "curves": lambda: curves_figure(results.headline),
        "tradeoff": lambda: tradeoff_figure(reference, report.epsilon) if report.epsilon is not None else None,
        "heatmap": lambda: heatmap_figure(reference, report.epsilon) if report.epsilon is not None else None,
        "gallery": lambda: (
            gallery_figure(results.read_examples()) if results.examples else f"no examples.npz ({_RERUN})"
        ),
        "transfer": lambda: (
            transfer_figure(results.transfer, report.epsilon or 0.0)
            if results.transfer is not None and not results.transfer.empty
            else f"no transfer.parquet ({_RERUN})"
        ),
        "min-norm-curves": lambda: _min_norm(results),
    }
    with paper_style():
        for name in only:
            fig = builders[name]()
            if isinstance(fig, str):
                report.skipped[name] = fig
            elif fig is None:
                report.skipped[name] = "no successful rows to draw"
            else:
                report.written[name] = save_figure(fig, out / name)
    return report


def _min_norm(results: Results) -> Figure | str | None:
    table = results.table
    if not table["minimum_norm"].astype(bool).any():
        return "no minimum-norm attack in the matrix"
    samples = results.read_samples()
    if samples is None:
        return "no samples.parquet"
    if len(results.seeds) > 1:  # per-sample norms are one training's: the first seed's
        table = table[table["training_seed"] == results.seeds[0]]
    return min_norm_figure(table, samples)
