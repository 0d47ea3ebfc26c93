"""Results pages: reference tables (results/reference/) and the Markdown pages generated from them.

Quick tests build a tiny results folder in code; the committed pages are checked against their
references, and one slow test runs the whole chain on the smoke run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from bench.cli import main
from bench.core.schema import FLAG_NAMES, MATRIX_COLUMNS, MODEL_COLUMNS, TRANSFER_COLUMNS, conform
from bench.core.stats import wilson
from bench.outputs.formats import REFERENCE_DROPPED, load_results, read_reference, write_reference
from bench.outputs.pages import (
    markdown_table,
    read_references,
    render_index,
    render_page,
    transform_comparisons,
    zoo_markdown,
)

REPO = Path(__file__).resolve().parents[1]
REFERENCE_DIR = REPO / "results" / "reference"
PAGES_DIR = REPO / "docs" / "results"
REFERENCES = sorted(REFERENCE_DIR.glob("*.csv"))
REGENERATE = "python -m bench report --markdown"

N = 200
EPSILONS = (1.0, 2.0, 4.0)
DETECTORS = ("bayar[scale=0.25]", "srm")
PGD = "art.pgd[random_start=true,rel_stepsize=0.25,steps=10]"
FOOLBOX_PGD = "foolbox.pgd[random_start=true,rel_stepsize=0.25,steps=10]"
RATES = ("clean_accuracy", "robust_accuracy", "tpr", "tnr", "attack_success_rate")


# --- a tiny synthetic results folder


def _rate(k: int, n: int, prefix: str) -> dict[str, float]:
    low, high = wilson(k, n)
    return {prefix: k / n, f"{prefix}_low": low, f"{prefix}_high": high}


def _row(
    detector: str,
    defense: str,
    attack: str,
    epsilon: float,
    robust: int,
    *,
    clean: int = 180,
    gradient: str = "exact",
    norm: str = "linf",
    variant: tuple[str, str] = ("float", "none"),
    threat: str = "white-box",
    flags: tuple[str, ...] = (),
) -> dict[str, Any]:
    library = attack.split(".", 1)[0] if "." in attack else "ensemble"
    robust = min(robust, clean)
    return {
        "task": "median3",
        "detector": detector,
        "defense": defense,
        "attack": attack,
        "gradient": gradient,
        "library": library,
        "norm": norm,
        "threat": threat,
        "minimum_norm": False,
        "quantized": variant[0],
        "postprocess": variant[1],
        "epsilon": epsilon / 255,
        "epsilon_255": epsilon,
        "n": N,
        **_rate(clean, N, "clean_accuracy"),
        **_rate(robust, N, "robust_accuracy"),
        **_rate(robust // 2, N // 2, "tpr"),
        **_rate(robust - robust // 2, N // 2, "tnr"),
        **_rate(clean - robust, clean, "attack_success_rate"),
        "perturbation_linf_max": epsilon / 255,
        "perturbation_l2_mean": 0.1 * epsilon,
        "psnr_mean": 60.0 - epsilon,
        "ssim_mean": 1.0 - epsilon / 100,
        "attacked": clean,
        "queries": np.nan,
        "query_budget": np.nan,
        "seconds": 0.5,
        "train_seconds": 10.0,
        "seed": 0,
        "cell": f"{detector}{defense}{attack}{gradient}",
        "model": f"{detector}{defense}",
        "device": "cpu",
        "threads": 1,
        "error": "",
        "flags": ",".join(flags),
        **{f"flag_{name}": name in flags for name in FLAG_NAMES},
    }


def _curves(detector: str, defense: str, start: int, *, transform: bool = False) -> list[dict[str, Any]]:
    """FGSM, PGD (ART and Foolbox) and the ensemble on one model; ``start``: PGD's robust count at the smallest epsilon."""
    rows = []
    gradients = ("oblivious", "exact", "bpda") if transform else ("exact",)
    for i, e in enumerate(EPSILONS):
        pgd = max(start - 60 * i, 0)
        for g, gradient in enumerate(gradients):
            shift = 40 * (len(gradients) - 1 - g)  # oblivious the weakest, the adaptive (bpda) the strongest
            steps = "steps=20" if gradient == "bpda" else "steps=10"  # a BPDA cell runs twice the steps
            rows.append(_row(detector, defense, "art.fgsm", e, 100 + shift, gradient=gradient))
            rows.append(_row(detector, defense, PGD.replace("steps=10", steps), e, pgd + shift, gradient=gradient))
            rows.append(
                _row(detector, defense, FOOLBOX_PGD.replace("steps=10", steps), e, pgd + shift + 3, gradient=gradient)
            )
        rows.append(_row(detector, defense, "ensemble", e, max(pgd - 5, 0), gradient="any", threat="ensemble"))
        for variant, extra in ((("uint8", "none"), 2), (("uint8", "jpeg75"), 50)):
            rows.append(
                _row(detector, defense, "ensemble", e, pgd + extra, gradient="any", threat="ensemble", variant=variant)
            )
    return rows


def _model(detector: str, defense: str, accuracy: int = 900, *, task: str = "median3") -> dict[str, Any]:
    return {
        "task": task,
        "detector": detector,
        "defense": defense,
        **_rate(accuracy, 1000, "test_accuracy"),
        "test_n": 1000,
        **_rate(180, 200, "val_accuracy"),
        "parameters": 1234,
        "epochs": 3,
        "train_seconds": 12.0,
        "from_cache": False,
        "model": f"{detector}{defense}",
        "device": "cpu",
        "threads": 1,
        "error": "",
    }


def make_folder(
    root: Path,
    *,
    name: str = "tiny",
    defenses: bool = False,
    transforms: bool = False,
    transfer: bool = False,
    costs: bool = False,
) -> Path:
    """A results folder of `python -m bench run` with a few cells: two undefended detectors, and
    optionally a training-time defence, an input transform, transfer rows and the costs tables."""
    rows = []
    models = []
    for detector in DETECTORS:
        rows += _curves(detector, "none", 100 if detector == "srm" else 120)
        models.append(_model(detector, "none"))
        if defenses:
            rows += _curves(detector, "grad-penalty[lambda=0.01]", 180 if detector == "srm" else 140)
            models.append(_model(detector, "grad-penalty[lambda=0.01]", 880))
        if transforms:
            rows += _curves(detector, "jpeg", 110, transform=True)
            models.append(_model(detector, "jpeg"))
    rows[0] = {**rows[0], **_row(DETECTORS[0], "none", "art.fgsm", EPSILONS[0], 100, flags=("non_monotone",))}
    folder = root / name
    folder.mkdir(parents=True)
    table = conform(pd.DataFrame(rows), MATRIX_COLUMNS)
    table.to_parquet(folder / "matrix.parquet", index=False)
    table.to_csv(folder / "matrix.csv", index=False)
    pd.DataFrame(models, columns=list(MODEL_COLUMNS)).to_csv(folder / "models.csv", index=False)
    run = {
        "profile": name,
        "finished": "2026-01-01T00:00:00+0000",
        "versions": {"torch": "2.0", "adversarial-robustness-toolbox": "1.0", "foolbox": "3.0"},
        "host": {"platform": "Linux", "cpu_count": 2, "torch_threads": 2},
        "configuration": {"profile": name, "description": "a tiny synthetic run", "seed": 0},
        "matrix": {"file": "tiny.toml", "builtin": False},
        "images": {"source": "skimage"},
        "datasets": {"median3": {"classes": ["pristine", "median3"]}},
        "stats": {"cells": 6},
        "timings": {"total_seconds": 12.5},
        "flags": {name: int(table[f"flag_{name}"].sum()) for name in FLAG_NAMES},
    }
    if transforms:  # the attack each BPDA cell ran: twice the steps
        run["attacks_run"] = {a: {"bpda": a.replace("steps=10", "steps=20")} for a in (PGD, FOOLBOX_PGD)}
    (folder / "run.json").write_text(json.dumps(run, indent=2))
    if transfer:
        records = [
            {
                "task": "median3",
                "source_detector": source,
                "source_defense": "none",
                "target_detector": target,
                "target_defense": "none",
                "attack": PGD,
                "white_box": source == target,
                "epsilon_255": e,
                "n": N,
                **_rate(180, N, "target_clean_accuracy"),
                **_rate(60 if source == target else 150, N, "target_accuracy"),
                "target_robust_accuracy": 0.5,
                "source_fooled": 100,
                "transfer_n": 90,
                **_rate(90 if source == target else 20, 90, "transfer_success_rate"),
                "source_cell": "c",
                "target_model": "m",
                "device": "cpu",
                "threads": 1,
            }
            for e in EPSILONS
            for source in DETECTORS
            for target in DETECTORS
        ]
        conform(pd.DataFrame(records), TRANSFER_COLUMNS).to_parquet(folder / "transfer.parquet", index=False)
    if costs:
        common = {"task": "median3", "detector": "srm", "defense": "none", "n": N, "clean_accuracy": 0.9}
        pd.DataFrame(
            [
                {**common, "measure": "sweep / largest epsilon", "attack": "art.pgd", "norm": "linf", "seconds": 3.0}
                | {"reference_seconds": 2.0, "ratio": 1.5, "max_gap": np.nan},
                {**common, "measure": "minimum-norm run / one PGD run", "attack": "foolbox.fmn-linf", "norm": "linf"}
                | {"seconds": 5.0, "reference_seconds": 2.0, "ratio": 2.5, "max_gap": 0.04}
                | {"norm_scale": 1.1, "shape_gap": 0.01, "same_shape": True},
            ]
        ).to_csv(folder / "costs.csv", index=False)
        pd.DataFrame(
            [
                {"task": "median3", "detector": "srm", "defense": d, "epochs": 2, "seconds": 2 * r, "ratio": r}
                | {"seconds_per_epoch": r}
                for d, r in (("none", 1.0), ("grad-penalty[lambda=0.01]", 3.25))
            ]
        ).to_csv(folder / "training-costs.csv", index=False)
    return folder


def make_zoo(root: Path) -> Path:
    """A folder of `python -m bench zoo`: models.csv, per_photo.csv, run.json (no matrix)."""
    folder = root / "zoo"
    folder.mkdir(parents=True)
    models = [
        _model("bayar[scale=0.25]", "none", 900, task="median3"),
        _model("srm", "none", 950, task="median3"),
        _model("bayar[scale=0.25]", "none", 510, task="blur"),
        _model("srm", "none", 700, task="blur"),
    ]
    pd.DataFrame(models, columns=list(MODEL_COLUMNS)).to_csv(folder / "models.csv", index=False)
    photos = [
        {"task": m["task"], "detector": m["detector"], "defense": "none", "photo": p, "n": 100, "accuracy": a}
        for m in models
        for p, a in (("camera", 0.9), ("cell", 0.6))
    ]
    pd.DataFrame(photos).to_csv(folder / "per_photo.csv", index=False)
    run = {
        "profile": "zoo",
        "finished": "2026-01-01T00:00:00+0000",
        "configuration": {"profile": "zoo", "description": "a tiny zoo"},
        "datasets": {"median3": {"classes": ["pristine", "median3"]}, "blur": {"classes": ["pristine", "blur"]}},
    }
    (folder / "run.json").write_text(json.dumps(run))
    return folder


def _sections(page: str) -> list[str]:
    return [line[3:] for line in page.splitlines() if line.startswith("## ")]


# --- (a) the committed pages are generated from the committed references


def test_references_are_committed() -> None:
    """The page check below must not pass for want of references."""
    assert REFERENCES, f"no reference tables in {REFERENCE_DIR}; write them with `{REGENERATE} results/<profile>`"


@pytest.mark.parametrize("csv", REFERENCES, ids=[p.stem for p in REFERENCES])
def test_committed_page_is_generated_from_its_reference(csv: Path) -> None:
    page = PAGES_DIR / f"{csv.stem}.md"
    assert page.is_file(), f"{page} missing; regenerate the pages with `{REGENERATE}`"
    assert render_page(read_reference(csv)) == page.read_text(), (
        f"{page} differs from what {csv.relative_to(REPO)} renders; regenerate the pages with `{REGENERATE}`"
    )


def test_committed_index_lists_every_reference() -> None:
    index = PAGES_DIR / "README.md"
    assert index.is_file(), f"{index} missing; regenerate the pages with `{REGENERATE}`"
    assert render_index(read_references(REFERENCE_DIR)) == index.read_text(), (
        f"{index} differs from what {REFERENCE_DIR.relative_to(REPO)} renders; regenerate it with `{REGENERATE}`"
    )


# --- (b) round trip


def _assert_same_table(before: pd.DataFrame, after: pd.DataFrame) -> None:
    assert list(after.columns) == list(MATRIX_COLUMNS)
    assert dict(after.dtypes.astype(str)) == {c: str(pd.Series(dtype=t).dtype) for c, t in MATRIX_COLUMNS.items()}
    assert len(after) == len(before)
    for column in MATRIX_COLUMNS:
        if column in ("cell", "model"):
            assert (after[column] == "").all()
        elif MATRIX_COLUMNS[column] == "float64":
            assert np.allclose(before[column], after[column], rtol=1e-5, atol=0, equal_nan=True), column
        else:
            assert before[column].astype(str).tolist() == after[column].astype(str).tolist(), column
    for column in ("clean_accuracy", "robust_accuracy"):  # rates over n: every count comes back exactly
        k_before = np.round(before[column] * before["n"]).astype(int)
        k_after = after[column] * after["n"]
        assert (np.round(k_after).astype(int) == k_before).all() and np.allclose(k_after, k_before, atol=1e-3)


def test_reference_round_trip_keeps_every_value_count_and_flag(tmp_path: Path) -> None:
    results = load_results(make_folder(tmp_path, defenses=True, transforms=True, transfer=True))
    csv, meta = write_reference(results, tmp_path / "reference")
    assert (csv.name, meta.name) == ("tiny.csv", "tiny.json")
    header = csv.read_text().splitlines()[0].split(",")
    assert not set(REFERENCE_DROPPED) & set(header) and "flags" in header
    back = read_reference(csv)
    _assert_same_table(results.table, back.table)
    assert (
        back.table["flag_non_monotone"].sum() == 1 and back.table["flags"].tolist() == results.table["flags"].tolist()
    )
    assert results.models is not None and back.models is not None
    columns = ["detector", "defense", "test_n", "test_accuracy"]
    assert back.models[columns].astype(str).values.tolist() == results.models[columns].astype(str).values.tolist()
    assert back.transfer is not None and len(back.transfer) == 12 and (back.transfer["source_cell"] == "").all()
    info = json.loads(meta.read_text())
    assert info["profile"] == "tiny" and info["description"] == "a tiny synthetic run"
    assert info["source"] == results.folder.resolve().as_posix() and info["finished"] == "2026-01-01T00:00:00+0000"
    assert "source_cell" not in info["transfer"][0]
    # the same folder, or its reference read back, writes the same bytes
    again = write_reference(back, tmp_path / "again")
    assert [p.read_bytes() for p in again] == [csv.read_bytes(), meta.read_bytes()]


def test_reference_of_a_zoo_has_an_empty_matrix_and_the_per_photo_table(tmp_path: Path) -> None:
    results = load_results(make_zoo(tmp_path), require_matrix=False)
    csv, _ = write_reference(results, tmp_path / "reference")
    lines = csv.read_text().splitlines()
    assert len(lines) == 1 and lines[0].startswith("task,detector,defense,attack")
    back = read_reference(csv)
    assert back.table.empty and list(back.table.columns) == list(MATRIX_COLUMNS)
    assert back.per_photo is not None and len(back.per_photo) == 8
    assert back.models is not None and back.models["error"].tolist() == [""] * 4


def test_unreadable_reference_is_one_line_error(tmp_path: Path) -> None:
    from bench.core.errors import BenchError

    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(BenchError, match=r"bad\.csv: not a reference table"):
        read_reference(tmp_path / "bad.csv")
    (tmp_path / "lone.csv").write_text("task\n")
    with pytest.raises(BenchError, match=r"lone\.json: no such reference file"):
        read_reference(tmp_path / "lone.csv")


# --- (c) sections follow the data


def _page(tmp_path: Path, **kwargs: bool) -> str:
    csv, _ = write_reference(load_results(make_folder(tmp_path, **kwargs)), tmp_path / "reference")
    return render_page(read_reference(csv))


def test_plain_run_has_no_defence_transform_or_transfer_sections(tmp_path: Path) -> None:
    page = _page(tmp_path)
    assert _sections(page) == [
        "Findings",
        "Models",
        "Robust accuracy",
        "Every attack on every model",
        "Adversarial images as real images",
        "Trust flags",
        "Names",
    ]
    assert "`python -m bench run --matrix FILE --profile tiny`" in page  # not a built-in profile
    assert "from `results/reference/tiny.csv` - do not edit" in page
    assert "- versions: torch 2.0, ART 1.0, Foolbox 3.0" in page
    assert "- detector `bayar`: `bayar[scale=0.25]`" in page
    assert f"- attack `art.pgd`: `{PGD}`" in page
    # the summary: worst case per patch with its interval, clean first
    assert "| `median3` | `bayar` | `none` | 200 | 0.900 [0.851, 0.934] | 0.575 [0.506, 0.641] |" in page
    assert "[`non_monotone`](../flags.md#non_monotone) | 1 |" in page
    # findings: numbers from the tables, wording that fits them
    findings = page.split("## Findings")[1].split("## Models")[0]
    assert "falls below 0.100 only at the largest ε, 4/255 (0.000)." in findings
    assert (
        "ART's FGSM leaves more robust accuracy than the best iterative ART attack of its norm at the largest ε "
        in (findings)
    )
    assert "on 2 of 2 models (largest gap 0.500: `bayar` / `none` on `median3` at 4/255, " in findings
    assert "`art.pgd` / `foolbox.pgd`: robust accuracy differs by at most 0.015 over 6 pairs of rows" in findings
    assert "every pair's 95% intervals overlap." in findings
    assert "Trust flags fired on 1 of 36 rows (`non_monotone` on 1)" in findings
    assert page.endswith("\n") and "\n\n\n" not in page


def test_defences_transforms_and_transfer_add_their_sections_and_findings(tmp_path: Path) -> None:
    page = _page(tmp_path, defenses=True, transforms=True, transfer=True, costs=True)
    sections = _sections(page)
    for section in ("Defences against the undefended detector", "Input transforms", "Transferability", "Costs"):
        assert section in sections
    # eps*: bayar's undefended worst case 0.575, 0.275 -> 2/255; grad-penalty there 0.375: +10 points, clean cost 0
    assert "| `median3` | `bayar` | 2/255 | 0.275 | `grad-penalty` | 0.375 [" in page
    assert "| +10.0 | +0.0 | no |" in page
    # srm: 0.475 -> 0.175 at 2/255 against 0.575: +40 points, meets the bar
    assert "| +40.0 | +0.0 | yes |" in page
    assert "1 of 2 (training-time defence, detector) pairs meet the seed paper's bar" in page
    # jpeg is an input transform: compared by gradient (bpda, its adaptive one, the strongest here)
    assert "`jpeg`" not in page.split("## Defences against the undefended detector")[1].split("## Input transforms")[0]
    assert "adaptive ≤ oblivious in 18 of 18 comparisons" in page.replace("Adaptive", "adaptive")
    assert "(bpda)" in page
    assert "| `bayar` / `none` | 0.300 * | 0.750 |" in page  # target accuracy, source itself marked
    assert (
        "| `srm` | `none` | minimum-norm run / one PGD run | `foolbox.fmn-linf` | 2.50 | 0.040 | 1.10 | 0.010 |" in page
    )
    assert "| `median3` | `srm` | `grad-penalty` | 2 | 3.25 |" in page


def test_zoo_page_has_the_zoo_and_chance_findings(tmp_path: Path) -> None:
    csv, _ = write_reference(load_results(make_zoo(tmp_path), require_matrix=False), tmp_path / "reference")
    page = render_page(read_reference(csv))
    assert _sections(page) == ["Findings", "Zoo", "Names"]
    assert "`python -m bench zoo`" in page
    assert "`median3`: `srm` 0.950 [" in page
    assert "At chance (95% interval of clean accuracy containing 1/classes): `blur` (1/2): `bayar`." in page
    assert "| `median3` | `srm` | 0.950 | `camera` 0.900 (100), `cell` 0.600 (100) |" in page


def test_zoo_markdown_marks_a_detector_missing_on_a_task() -> None:
    models = pd.DataFrame([_model("bayar", "none"), _model("srm", "none", task="blur")], columns=list(MODEL_COLUMNS))
    table = zoo_markdown(models)
    assert "| `median3` (1000) | 0.900 [0.880, 0.917] 12 s | – |" in table
    assert table.endswith("Detectors: `bayar`; `srm`. Defence: `none`.")


def test_markdown_table_escapes_pipes() -> None:
    frame = pd.DataFrame([{"a": "x|y", "b": "1"}])
    assert markdown_table(frame) == "| a | b |\n|---|---|\n| x\\|y | 1 |"


# --- (d) the command line


def test_cli_writes_the_reference_the_page_and_the_index(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = make_folder(tmp_path, defenses=True)
    references, pages = tmp_path / "reference", tmp_path / "pages"
    code = main(["report", "--markdown", str(folder), "--reference-dir", str(references), "--pages-dir", str(pages)])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    written = [references / "tiny.csv", references / "tiny.json", pages / "tiny.md", pages / "README.md"]
    assert out == [f"written: {p}" for p in written]
    assert all(p.is_file() for p in written)
    assert "| [tiny](tiny.md) | a tiny synthetic run |" in (pages / "README.md").read_text()
    # without RESULTS_DIR: every page again from the references, the same bytes
    before = (pages / "tiny.md").read_bytes()
    (pages / "tiny.md").unlink()
    assert main(["report", "--markdown", "--reference-dir", str(references), "--pages-dir", str(pages)]) == 0
    assert capsys.readouterr().out.splitlines() == [f"written: {pages / 'tiny.md'}", f"written: {pages / 'README.md'}"]
    assert (pages / "tiny.md").read_bytes() == before


@pytest.mark.parametrize("case", ["missing folder", "no references", "unreadable reference"])
def test_cli_bad_input_is_one_line_exit_2_and_nothing_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    references, pages = tmp_path / "reference", tmp_path / "pages"
    args = ["report", "--markdown", "--reference-dir", str(references), "--pages-dir", str(pages)]
    if case == "missing folder":
        args.insert(2, str(tmp_path / "absent"))
    elif case == "unreadable reference":
        references.mkdir()
        (references / "broken.csv").write_text("not,a,reference\n")
        (references / "broken.json").write_text("[]")
        args.insert(2, str(make_folder(tmp_path)))  # a good folder: its files must not be written either
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.splitlines()) == 1 and captured.err.startswith("error: ")
    assert not pages.exists()
    assert sorted(p.name for p in references.glob("*")) == (
        [] if case != "unreadable reference" else ["broken.csv", "broken.json"]
    )


# --- end to end on the smoke run (slow)


def test_smoke_reference_keeps_every_count_and_renders(smoke: Any, tmp_path: Path) -> None:
    folder = smoke.results_dir / "smoke"
    references, pages = tmp_path / "reference", tmp_path / "pages"
    assert (
        main(["report", "--markdown", str(folder), "--reference-dir", str(references), "--pages-dir", str(pages)]) == 0
    )
    results = load_results(folder)
    back = read_reference(references / "smoke.csv")
    _assert_same_table(results.table, back.table)
    for name in FLAG_NAMES:
        assert back.table[f"flag_{name}"].tolist() == results.table[f"flag_{name}"].tolist()
    page = (pages / "smoke.md").read_text()
    assert page == render_page(back)
    assert {"Findings", "Models", "Robust accuracy", "Transferability", "Trust flags"} <= set(_sections(page))


def test_bpda_rows_are_paired_with_their_attack_with_or_without_attacks_run(tmp_path: Path) -> None:
    """A BPDA cell runs its attack with more steps and its rows name that attack: run.json's
    ``attacks_run`` pairs them; folders written before it was recorded pair them by name."""
    results = load_results(make_folder(tmp_path, transforms=True))
    recorded = transform_comparisons(results.table, results.run["attacks_run"])
    assert recorded and {c.adaptive_gradient for c in recorded if c.attack != "art.fgsm"} == {"bpda"}
    assert transform_comparisons(results.table, {}) == recorded


@pytest.mark.parametrize(
    ("matrix", "command"),
    [
        ({"file": "tiny.toml", "builtin": True}, "`python -m bench run --matrix --profile tiny`"),
        ({"file": "smoke.toml", "builtin": True}, "`python -m bench run --matrix FILE --profile tiny`"),
        ({"file": "tiny.toml", "builtin": False}, "`python -m bench run --matrix FILE --profile tiny`"),
    ],
)
def test_the_command_on_the_page_reruns_the_profile(tmp_path: Path, matrix: dict, command: str) -> None:
    """`--profile NAME` alone only for a built-in profile's own file (a built-in file run under
    another profile name needs the file)."""
    folder = make_folder(tmp_path)
    run = json.loads((folder / "run.json").read_text())
    (folder / "run.json").write_text(json.dumps({**run, "matrix": matrix}))
    csv, _ = write_reference(load_results(folder), tmp_path / "reference")
    assert f"- produced by: {command}" in render_page(read_reference(csv))
