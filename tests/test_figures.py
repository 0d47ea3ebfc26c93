"""Paper figures and LaTeX tables read from a finished run's folder."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.core.errors import BenchError
from bench.outputs.figures import (
    DOUBLE,
    FIGURES,
    MIN_NORM_COLUMNS,
    TITLE_MAX,
    curves_figure,
    figure_problems,
    gallery_figure,
    heatmap_figure,
    make_figures,
    min_norm_figure,
    panel_title,
    paper_style,
    too_small,
    tradeoff_figure,
    transfer_figure,
)
from bench.outputs.formats import load_results
from bench.outputs.latex import escape, make_tables, standalone
from bench.outputs.summary import defense_families, pick_epsilon, reference_rows, short_labels


@pytest.fixture(scope="module")
def drawn(smoke, tmp_path_factory: pytest.TempPathFactory):
    """Figures and tables of the smoke run, drawn once into a temporary folder."""
    out = tmp_path_factory.mktemp("drawn")
    results = load_results(smoke.results_dir / "smoke")
    return make_figures(results, out_dir=out / "figures"), make_tables(results, out_dir=out / "tables"), results


# the smoke matrix has two detectors and one defence: a heatmap and a trade-off would be nearly empty
SMOKE_SKIPS = {"heatmap": "2 detectors x 2 defences", "tradeoff": "second defence"}


@pytest.mark.parametrize("name", FIGURES)
def test_every_figure_is_drawn_at_paper_width(drawn, name: str) -> None:
    from PIL import Image

    figures, _, _ = drawn
    if name in SMOKE_SKIPS:
        assert name not in figures.written and SMOKE_SKIPS[name] in figures.skipped[name]
        return
    pdf, png, caption = figures.written[name]
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 1000
    width, height = Image.open(png).size
    assert width / 200 <= DOUBLE + 0.15, f"{name} is {width / 200:.2f} in wide"  # PNGs at 200 dpi
    assert height > 100
    text = caption.read_text()  # the caption and the full canonical name behind every shortened label
    assert text.startswith(f"{name}: ") and "bayar = bayar[filters=3,scale=0.25,truncate=3.0]" in text


def test_the_smoke_figures_follow_the_rules(drawn) -> None:
    """Every figure of the smoke run drawn again and inspected: no empty panel, no title over
    TITLE_MAX characters, every axis that shows tick labels labelled, each panel one norm."""
    _, _, results = drawn
    table = results.headline
    with paper_style():
        figures = {
            "curves": curves_figure(table),
            "gallery": gallery_figure(results.read_examples()),
            "transfer": transfer_figure(results.transfer, 1.0),
            "min-norm-curves": min_norm_figure(table, results.read_samples()),
        }
        for name, fig in figures.items():
            assert fig is not None, name
            assert figure_problems(fig) == [], name
        curves = [ax for ax in figures["curves"].axes if ax.get_visible()]
        ensembles = [ax.get_title().split("\n")[0] for ax in curves if ax.get_title().startswith("ensemble")]
        assert ensembles == ["ensemble (L\u221e)", "ensemble (L2)"]  # one panel per norm, Linf first
        for ax in curves:  # each panel's x axis names its own norm
            norm = "L2" if "(L2)" in ax.get_title() else "L\u221e"
            assert not ax.get_xlabel() or ax.get_xlabel().startswith(norm), (ax.get_title(), ax.get_xlabel())


def _curve_rows(norm: str, attack: str, robust: list[float]) -> list[dict]:
    return [
        {
            "task": "t",
            "detector": "bayar[scale=0.25]",
            "defense": "none",
            "attack": attack,
            "gradient": "any" if attack == "ensemble" else "exact",
            "threat": "ensemble" if attack == "ensemble" else "white-box",
            "norm": norm,
            "quantized": "float",
            "postprocess": "none",
            "epsilon_255": e,
            "clean_accuracy": 0.9,
            "clean_accuracy_low": 0.85,
            "clean_accuracy_high": 0.95,
            "robust_accuracy": r,
            "robust_accuracy_low": r - 0.01,
            "robust_accuracy_high": r + 0.01,
            "error": "",
        }
        for e, r in zip((1.0, 2.0, 4.0), robust, strict=True)
    ]


def test_curves_never_join_two_norms_into_one_line() -> None:
    """The ensemble rows of both norms share the name ``ensemble``: each norm gets its own panel,
    and every line holds one norm's values only (one panel per attack and norm)."""
    values = {"linf": [0.61, 0.41, 0.21], "l2": [0.73, 0.53, 0.33]}
    rows = []
    for norm, robust in values.items():
        rows += _curve_rows(norm, "ensemble", robust)
        rows += _curve_rows(norm, f"lib.pgd-{norm}[steps=10]", [v + 0.02 for v in robust])
    with paper_style():
        fig = curves_figure(pd.DataFrame(rows))
    assert fig is not None and figure_problems(fig) == []
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == 4
    for ax in panels:
        norm = "l2" if "(L2)" in ax.get_title() else "linf"
        expected = {round(v + (0.02 if "pgd" in ax.get_title() else 0.0), 6) for v in values[norm]} | {0.9}
        (line,) = ax.get_lines()
        assert {round(float(y), 6) for y in line.get_ydata()} == expected, ax.get_title()
        assert ax.get_xlabel().startswith("L2" if norm == "l2" else "L\u221e")


def test_figure_problems_finds_what_breaks_the_rules() -> None:
    import matplotlib.pyplot as plt

    with paper_style():
        fig, (unlabelled, empty) = plt.subplots(1, 2)
        unlabelled.plot([0, 1], [0, 1])
        unlabelled.set_title("x" * (TITLE_MAX + 1))
        empty.set(title="empty", xlabel="x", ylabel="y")
        problems = figure_problems(fig)
        assert len(problems) == 4, problems
        assert problems[0].startswith(f"title over {TITLE_MAX} characters")
        assert "the x axis shows tick labels but has no label" in problems[1]
        assert "the y axis shows tick labels but has no label" in problems[2]
        assert problems[3] == "panel 'empty' is empty"
        unlabelled.set_title(panel_title("x" * 60, "k=v"))
        unlabelled.set_xlabel("x")
        unlabelled.set_ylabel("y")
        empty.set_visible(False)
        assert figure_problems(fig) == []
        plt.close(fig)
        fig, axes = plt.subplots(1, 2, figsize=(2.0, 1.0))  # two titles too wide for their panels
        for ax in axes:
            ax.plot([0, 1], [0, 1])
            ax.set(title="w" * 30, xlabel="x", ylabel="y")
        assert [p for p in figure_problems(fig) if "overlap" in p] == [f"titles {'w' * 30!r} and {'w' * 30!r} overlap"]
        plt.close(fig)
    assert len(panel_title("attack", "restarts=5,steps=50,travel=2.5," * 3).replace("\n", "")) == TITLE_MAX


def test_single_epsilon_figures_need_two_defences() -> None:
    def reference(detectors: int, defenses: int) -> pd.DataFrame:
        rows = [
            {
                "task": "t",
                "detector": f"d{i}",
                "defense": "none" if j == 0 else f"gp[lambda={j}]",
                "norm": "linf",
                "epsilon_255": 2.0,
                "clean_accuracy": 0.9 - 0.01 * j,
                "robust_accuracy": 0.1 * (i + j),
                "robust_accuracy_low": 0.1 * (i + j),
                "robust_accuracy_high": 0.1 * (i + j) + 0.05,
            }
            for i in range(detectors)
            for j in range(defenses)
        ]
        return pd.DataFrame(rows)

    small = reference(2, 1)
    assert "2 detectors x 2 defences" in str(too_small(small, "heatmap"))
    assert "second defence" in str(too_small(small, "tradeoff"))
    assert too_small(reference(1, 2), "tradeoff") is None and too_small(reference(1, 2), "heatmap") is not None
    full = reference(2, 2)
    assert too_small(full, "heatmap") is None and too_small(full, "tradeoff") is None
    with paper_style():
        fig = heatmap_figure(full, 2.0)
    assert fig is not None and figure_problems(fig) == []
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("defence", "detector")
    assert [t.get_text() for t in ax.texts] == ["0.00", "0.10", "0.10", "0.20"]  # annotated, none first


def test_figures_without_their_inputs_are_skipped_with_a_note(smoke, tmp_path: Path) -> None:
    for name in ("matrix.parquet", "run.json", "models.csv"):  # no transfer.parquet, no examples.npz
        shutil.copy(smoke.results_dir / "smoke" / name, tmp_path / name)
    figures = make_figures(tmp_path)
    assert set(figures.written) == {"curves"}
    assert set(figures.skipped) == {"tradeoff", "heatmap", "gallery", "transfer", "min-norm-curves"}
    assert "examples.npz" in figures.skipped["gallery"] and "transfer.parquet" in figures.skipped["transfer"]
    assert all(SMOKE_SKIPS[name] in figures.skipped[name] for name in SMOKE_SKIPS)


def test_figures_cli_reports_and_refuses_bad_input(smoke, tmp_path: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "bench", *args], check=False, capture_output=True, text=True, timeout=300
        )

    missing = cli("figures", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "no such results folder" in missing.stderr
    bad_eps = cli("figures", str(smoke.results_dir / "smoke"), "--epsilon", "3")
    assert bad_eps.returncode == 2 and "allowed: 1, 2, 4, 8" in bad_eps.stderr and "Traceback" not in bad_eps.stderr


def test_reference_rows_are_the_linf_ensemble(smoke) -> None:
    reference = reference_rows(smoke.result.table)
    assert set(reference["attack"]) == {"ensemble"} and set(reference["norm"]) == {"linf"}
    assert set(reference["quantized"]) == {"float"} and set(reference["postprocess"]) == {"none"}
    assert len(reference) == 2 * len(smoke.matrix.epsilons_255)


def _reference(values: dict[float, list[float]]) -> pd.DataFrame:
    rows = [
        {"task": "t", "detector": f"d{i}", "defense": "none", "epsilon_255": e, "robust_accuracy": v}
        for e, vs in values.items()
        for i, v in enumerate(vs)
    ]
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    ("values", "asked", "expected"),
    [
        ({1.0: [0.5, 0.5], 2.0: [0.9, 0.1], 4.0: [0.0, 0.0]}, None, 2.0),  # largest spread
        ({1.0: [0.9, 0.1], 2.0: [0.9, 0.1]}, None, 1.0),  # ties: the smaller epsilon
        ({1.0: [0.5, 0.5], 2.0: [0.9, 0.1]}, 1.0, 1.0),  # asked for
    ],
)
def test_pick_epsilon(values: dict, asked: float | None, expected: float) -> None:
    assert pick_epsilon(_reference(values), asked) == expected


def test_pick_epsilon_refuses_an_epsilon_the_results_lack() -> None:
    with pytest.raises(BenchError, match=r"--epsilon 3: not an epsilon of these results; allowed: 1, 2"):
        pick_epsilon(_reference({1.0: [0.5], 2.0: [0.4]}), 3.0)


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["bayar[filters=3,scale=0.25]", "srm[width=16]"], ["bayar", "srm"]),
        (
            ["gp[lambda=0.005,squared=false]", "gp[lambda=0.01,squared=false]", "none"],
            ["gp[lambda=0.005]", "gp[lambda=0.01]", "none"],
        ),
        (
            ["at[attack=fgsm,eps=1.0,steps=1]", "at[attack=pgd,eps=1.0,steps=2]"],
            ["at[attack=fgsm,steps=1]", "at[attack=pgd,steps=2]"],
        ),
    ],
)
def test_short_labels_keep_only_what_tells_entries_apart(names: list[str], expected: list[str]) -> None:
    assert [short_labels(names)[n] for n in names] == expected


def test_defense_families_group_strength_sweeps() -> None:
    defenses = [
        "none",
        "grad-penalty[lambda=0.01,squared=false]",
        "grad-penalty[lambda=0.005,squared=false]",
        "adv-train[attack=fgsm,eps=1.0,steps=1]",
        "adv-train[attack=pgd,eps=1.0,steps=2]",
        "adv-train[attack=fgsm,eps=2.0,steps=1]",
    ]
    families = defense_families(defenses)
    assert families["none"] == ("none", None)
    assert families["grad-penalty[lambda=0.01,squared=false]"] == ("grad-penalty", 0.01)
    assert families["grad-penalty[lambda=0.005,squared=false]"] == ("grad-penalty", 0.005)
    assert families["adv-train[attack=fgsm,eps=2.0,steps=1]"] == ("adv-train[attack=fgsm]", 2.0)
    assert families["adv-train[attack=pgd,eps=1.0,steps=2]"] == ("adv-train[attack=pgd]", None)


def test_tradeoff_joins_a_sweep_in_order_of_strength() -> None:
    rows = []
    for defense, clean, robust in (
        ("none", 0.95, 0.1),
        ("gp[lambda=0.02]", 0.80, 0.4),
        ("gp[lambda=0.01]", 0.9, 0.3),
        ("jpeg", 0.6, 0.5),
    ):
        rows.append(
            {
                "task": "t",
                "detector": "bayar",
                "defense": defense,
                "epsilon_255": 2.0,
                "clean_accuracy": clean,
                "robust_accuracy": robust,
                "robust_accuracy_low": robust - 0.05,
                "robust_accuracy_high": robust + 0.05,
            }
        )
    with paper_style():
        fig = tradeoff_figure(pd.DataFrame(rows).assign(norm="linf"), 2.0)
    assert fig is not None and figure_problems(fig) == []
    lines = [line for line in fig.axes[0].get_lines() if len(line.get_xdata()) > 1]
    assert len(lines) == 1  # only the grad-penalty sweep is joined
    assert list(lines[0].get_xdata()) == [0.9, 0.8]  # lambda 0.01, then 0.02
    assert {t.get_text() for t in fig.axes[0].texts} == {"0.01", "0.02"}


# -- LaTeX tables -------------------------------------------------------------------------------


def test_tables_are_booktabs_with_the_best_value_of_each_column_in_bold(drawn) -> None:
    _, tables, results = drawn
    assert [p.name for p in tables.written] == ["accuracy-median3-linf.tex", "accuracy-median3-l2.tex", "models.tex"]
    text = tables.written[0].read_text()
    for command in ("\\toprule", "\\midrule", "\\bottomrule", "\\begin{tabular}{llrrrrr}", "\\caption{", "\\label{"):
        assert command in text
    body = text.split("\\midrule")[1].split("\\bottomrule")[0]
    rows = [r for r in body.strip().split("\\\\") if "&" in r]
    assert len(rows) == 2 and all(r.count("&") == 6 for r in rows)  # detector, defence, clean + 4 epsilons
    reference = reference_rows(results.table, "linf")
    values = [[float(v) for v in re.findall(r"\$(?:\\mathbf\{)?([\d.]+)\}?_", r)] for r in rows]
    bolds = [[bool(re.match(r"\s*\$\\mathbf", c)) for c in r.split("&")[2:]] for r in rows]
    for col in range(5):
        column = [v[col] for v in values]
        assert [b[col] for b in bolds] == [v == max(column) for v in column]
    clean = reference.groupby("detector", sort=False)["clean_accuracy"].first().to_numpy()
    assert np.allclose([v[0] for v in values], np.round(100 * clean, 1))


def test_latex_escapes_special_characters() -> None:
    assert escape("a_b&c%d$e#f{g}h~i^j\\k") == (
        r"a\_b\&c\%d\$e\#f\{g\}h\textasciitilde{}i\textasciicircum{}j"
        r"\textbackslash{}k"
    )


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no pdflatex (TeX Live) on this machine: structure only")
def test_tables_compile_with_pdflatex(drawn, tmp_path: Path) -> None:
    _, tables, _ = drawn
    (tmp_path / "tables.tex").write_text(standalone([p.read_text() for p in tables.written]))
    proc = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "tables.tex"],
        check=False,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert (tmp_path / "tables.pdf").stat().st_size > 1000


def _flagged_table() -> pd.DataFrame:
    """Two ensemble rows and a PGD curve of one model; a failure flag on e=2, precision on e=4."""
    from bench.core.schema import MATRIX_COLUMNS, conform

    rows = []
    for attack in ("ensemble", "art.pgd"):
        for e, robust, flag in ((2.0, 0.6, "zero_loss_gradients"), (4.0, 0.3, "too_few_samples")):
            rows.append(
                {
                    "task": "median3",
                    "detector": "bayar",
                    "defense": "none",
                    "attack": attack,
                    "gradient": "any" if attack == "ensemble" else "exact",
                    "library": "ensemble" if attack == "ensemble" else "art",
                    "threat": "ensemble" if attack == "ensemble" else "white-box",
                    "norm": "linf",
                    "quantized": "float",
                    "postprocess": "none",
                    "epsilon": e / 255,
                    "epsilon_255": e,
                    "n": 500,
                    "clean_accuracy": 0.9,
                    "clean_accuracy_low": 0.87,
                    "clean_accuracy_high": 0.92,
                    "robust_accuracy": robust,
                    "robust_accuracy_low": robust - 0.04,
                    "robust_accuracy_high": robust + 0.04,
                    "error": "",
                    "flags": flag,
                    f"flag_{flag}": True,
                }
            )
    frame = pd.DataFrame(rows)
    for column, dtype in MATRIX_COLUMNS.items():
        if column not in frame:
            frame[column] = {"bool": False, "int64": 0, "Int64": pd.NA, "float64": np.nan}.get(dtype, "")
    frame = frame.fillna({c: False for c in frame.columns if c.startswith("flag_")})
    return conform(frame, MATRIX_COLUMNS)


def test_a_failure_flag_marks_its_number_in_the_latex_table_and_the_curves() -> None:
    from bench.outputs.figures import FLAG_MARK, curves_figure
    from bench.outputs.latex import accuracy_frame, accuracy_latex

    table = _flagged_table()
    frame = accuracy_frame(reference_rows(table), "median3")
    assert [frame.loc[0, c][3] for c in ("e=2", "e=4")] == [True, False]  # precision flags mark nothing
    text = accuracy_latex(frame, task="median3", norm="linf", attacks="art.pgd", source="x")
    body = text.split("\\midrule")[1]
    assert body.count("dagger") == 1 and "{60.0}_{[56.0,\\,64.0]}^{\\dagger}$" in body
    assert "failure of the evaluation" in text.split("\\label")[0]  # the caption explains the mark
    with paper_style():
        fig = curves_figure(table)
    assert fig is not None
    marks = [c for ax in fig.axes for c in ax.collections if c.get_label() == FLAG_MARK["label"]]
    assert len(marks) == 2  # the ensemble's panel and the attack's, on the flagged number only
    assert all(m.get_offsets().tolist() == [[2.0, 0.6]] for m in marks)
    clean = table.assign(flags="", flag_zero_loss_gradients=False, flag_too_few_samples=False)
    assert "dagger" not in accuracy_latex(
        accuracy_frame(reference_rows(clean), "median3"), task="median3", norm="linf", attacks="a", source="x"
    )


def test_samples_read_in_part_are_those_of_the_whole_table(smoke) -> None:
    """The run's own figures read only the per-sample rows and columns the minimum-norm curves
    need (a filtered parquet read): the same rows, in the same order, as the whole table filtered
    in pandas; and the same again once the whole table is in memory."""
    folder = smoke.results_dir / "smoke"
    whole = load_results(folder).read_samples()
    assert whole is not None
    expected = whole[(whole["quantized"] == "float") & (whole["postprocess"] == "none")]
    expected = expected[[c for c in whole.columns if c in {*MIN_NORM_COLUMNS, "adv_correct"}]]
    assert 0 < len(expected) < len(whole)
    lazy = load_results(folder, check_samples=False)
    assert lazy._samples is None  # nothing read yet
    part = lazy.read_samples(unprocessed=True, columns=MIN_NORM_COLUMNS)
    assert part is not None and lazy._samples is None  # the whole table was not read
    pd.testing.assert_frame_equal(part.reset_index(drop=True), expected.reset_index(drop=True), check_exact=True)
    in_memory = load_results(folder).read_samples(unprocessed=True, columns=MIN_NORM_COLUMNS)
    assert in_memory is not None
    pd.testing.assert_frame_equal(in_memory.reset_index(drop=True), expected.reset_index(drop=True), check_exact=True)
