"""The self-contained HTML report: content, flags at the top, and every image rendered in Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.core.schema import FLAG_NAMES, MATRIX_COLUMNS, conform
from bench.outputs.figures import FIGURES
from bench.outputs.report import FLAGS_DOC, flag_explanations, flag_summary, make_report

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
# flags the probe of the machine kind uses: a closed network refuses Chromium's background connections
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def report(smoke, tmp_path_factory: pytest.TempPathFactory):
    """The report of a copy of the smoke run's folder."""
    folder = tmp_path_factory.mktemp("report") / "smoke"
    shutil.copytree(smoke.results_dir / "smoke", folder)
    return make_report(folder)


def _anchors_resolve(page: str) -> None:
    """Every link of the page is an anchor of the page itself, and every anchor exists."""
    links = re.findall(r"href=['\"]?([^'\" >]+)", page)
    assert links and all(link.startswith("#") for link in links), [x for x in links if not x.startswith("#")]
    ids = set(re.findall(r"\bid=['\"]?([^'\" >]+)", page))
    assert {link[1:] for link in links} <= ids, {link[1:] for link in links} - ids


def test_report_is_self_contained_and_complete(report) -> None:
    page = report.path.read_text()
    sources = re.findall(r"<img[^>]* src='([^']*)'", page)
    # the smoke run has what every figure needs, but one defence: no heatmap, no trade-off (and the page says why)
    assert set(report.figures.skipped) == {"heatmap", "tradeoff"}
    assert len(sources) == len(report.figures.written) == len(FIGURES) - 2
    assert all(f"No {name} figure: {why}" in page for name, why in report.figures.skipped.items())
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r"(src|href)=['\"]?(https?:|file:|/|\.\./)", page)  # nothing outside the page
    assert "<script" not in page
    for text in ("Versions", "Configuration", "torch", "adversarial-robustness-toolbox", "median3", "Tables"):
        assert text in page
    assert page.count("<table>") >= 4  # accuracy linf, l2, models, datasets
    assert (report.path.parent / "tables" / "models.tex").is_file()
    # configuration and statistics as tables, not JSON
    assert "<pre" not in page and '"n_samples":' not in page and '"cells_computed":' not in page
    assert re.search(r"<th class=name>n_samples</th><td class=name>120</td>", page)
    assert re.search(r"<th class=name>cells</th><td class=name>\d+</td>", page)
    assert "<code>art.fgsm</code>" in page  # the matrix's attacks, one per line
    _anchors_resolve(page)
    # the smoke run raises weaker_than_reference and too_few_samples: both explained in the page
    for flag in ("weaker_than_reference", "too_few_samples"):
        assert f'href="#flag-{flag}"' in page and f'id="flag-{flag}"' in page
    assert "docs/flags.md#" not in page


def test_flagged_rows_come_first(smoke, tmp_path: Path) -> None:
    folder = tmp_path / "smoke"
    shutil.copytree(smoke.results_dir / "smoke", folder)
    table = pd.read_parquet(folder / "matrix.parquet")
    # plant one flag on the FGSM rows, in both forms a run writes: the flag_<name> columns and `flags`
    fgsm = table["attack"].str.startswith("art.fgsm")
    for name in FLAG_NAMES:
        table[f"flag_{name}"] = fgsm if name == "single_beats_iterative" else False
    table["flags"] = ""
    table.loc[fgsm, "flags"] = "single_beats_iterative"
    table.to_parquet(folder / "matrix.parquet", index=False)
    out = make_report(folder)
    page = out.path.read_text()
    assert out.flagged == int((table["flags"] != "").sum()) > 0
    flags_at, figures_at = page.index("id=flags"), page.index(">Figures</h2>")
    assert flags_at < figures_at and "single_beats_iterative" in page[flags_at:figures_at]
    assert "art.fgsm" in page[flags_at:figures_at] and "art.pgd" not in page[flags_at:figures_at]
    if FLAGS_DOC.is_file():  # the flag's explanation, from docs/flags.md, inside the page
        explained = page[page.index('id="flag-single_beats_iterative"') :]
        assert "Raised if" in explained[:2000]
    _anchors_resolve(page)
    table["flags"] = ""
    table.to_parquet(folder / "matrix.parquet", index=False)
    assert "No trust flag fired" in make_report(folder).path.read_text()


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="Chromium is not installed (the README's test command installs Debian's "
    "chromium where apt-get is available)",
)
def test_every_image_renders_in_headless_chromium(report, tmp_path: Path) -> None:
    """Load a copy of the page with a probe script that writes each image's natural width into
    the DOM once the page has loaded, then read the DOM Chromium dumps (a broken image added as a
    control must read 0)."""
    broken = "<img alt=control src='data:image/png;base64,AAAA'>"  # a negative control: must read 0
    probe = (
        broken + "<script>window.addEventListener('load', () => { for (const img of document.images) "
        "img.setAttribute('data-natural-width', img.naturalWidth); "
        "document.body.setAttribute('data-probe', document.images.length); });</script></body>"
    )
    html = report.path.read_text()
    figures = html.count("<img ")  # every figure the report embeds, read from the page itself
    assert figures == len(report.figures.written) >= 4, figures  # smoke: no heatmap, no trade-off
    page = tmp_path / "probe.html"
    page.write_text(html.replace("</body>", probe))
    proc = subprocess.run(
        [
            CHROMIUM,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=10000",
            "--dump-dom",
            page.as_uri(),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert re.search(r'data-probe="(\d+)"', proc.stdout), "the probe script did not run"
    assert int(re.search(r'data-probe="(\d+)"', proc.stdout).group(1)) == figures + 1
    widths = [int(w) for w in re.findall(r'data-natural-width="(\d+)"', proc.stdout)]
    assert len(widths) == figures + 1, widths
    assert all(w > 0 for w in widths[:figures]) and widths[figures] == 0, widths


def _row(attack: str, quantized: str, postprocess: str, epsilon: float, robust: float, flags: str) -> dict:
    row = {
        "task": "median3",
        "detector": "srm[width=16]",
        "defense": "none",
        "attack": attack,
        "gradient": "exact",
        "library": attack.split(".")[0],
        "threat": "white-box",
        "norm": "linf",
        "quantized": quantized,
        "postprocess": postprocess,
        "epsilon": epsilon / 255,
        "epsilon_255": epsilon,
        "n": 120,
        "clean_accuracy": 0.93,
        "clean_accuracy_low": 0.87,
        "clean_accuracy_high": 0.96,
        "robust_accuracy": robust,
        "robust_accuracy_low": max(robust - 0.09, 0.0),
        "robust_accuracy_high": robust + 0.09,
        "reference_robust_accuracy": 0.0,
        "error": "",
        "flags": flags,
    }
    for name in FLAG_NAMES:
        row[f"flag_{name}"] = name in flags.split(",")
    return row


def _table(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for column, dtype in MATRIX_COLUMNS.items():
        if column not in frame:
            frame[column] = {"bool": False, "int64": 0, "Int64": pd.NA, "float64": np.nan}.get(dtype, "")
    return conform(frame, MATRIX_COLUMNS)


def test_flag_table_shows_each_rows_own_robust_accuracy() -> None:
    """The defect of issue 18: a curve flagged on its JPEG rows showed their lowest robust accuracy
    as if it were the curve's. Each variant is its own entry now, with its own numbers."""
    table = _table(
        [
            _row("art.pgd[steps=10]", "float", "none", 1.0, 0.0, ""),
            _row("art.pgd[steps=10]", "uint8", "jpeg95", 1.0, 0.408, "too_few_samples"),
            _row("art.pgd[steps=10]", "uint8", "jpeg95", 2.0, 0.45, "too_few_samples"),
            _row("art.pgd[steps=10]", "uint8", "jpeg85", 1.0, 0.5, "too_few_samples"),
            _row("art.fgsm", "float", "none", 1.0, 0.2, "weaker_than_reference,too_few_samples"),
        ]
    )
    summary = flag_summary(table)
    assert summary["rows"] == 4
    assert [(c["flag"], c["severity"]) for c in summary["counts"]] == [
        ("weaker_than_reference", "failure"),
        ("too_few_samples", "precision"),
    ]
    entries = {(c["flag"], c["attack_short"], c["variant"]): c["points"] for c in summary["curves"]}
    assert [(p["epsilon"], p["value"]) for p in entries["too_few_samples", "art.pgd", "uint8, jpeg95"]] == [
        ("1", 0.408),
        ("2", 0.45),
    ]
    assert [p["value"] for p in entries["too_few_samples", "art.pgd", "uint8, jpeg85"]] == [0.5]
    assert ("too_few_samples", "art.pgd", "float") not in entries  # the unflagged float row is no entry
    (point,) = entries["weaker_than_reference", "art.fgsm", "float"]
    assert (point["value"], point["yardstick"]) == (0.2, 0.0)  # the reference attack's number beside it
    assert summary["curves"][0]["flag"] == "weaker_than_reference"  # failures first


def test_flag_explanations_link_only_into_the_page(tmp_path: Path) -> None:
    doc = tmp_path / "flags.md"
    doc.write_text(
        "# Trust flags\n\n## Severity\n\nTwo kinds; see [the results](results/default.md).\n\n## The flags\n\n"
        "### too_few_samples\n\n**Raised if** the interval is wide; compare `weaker_than_reference`.\n\n"
        "### weaker_than_reference\n\n**Raised if** the reference breaks more; see `too_few_samples`.\n"
    )
    explained = flag_explanations(["too_few_samples"], doc)
    assert explained["found"] and [s["name"] for s in explained["sections"]] == ["too_few_samples"]
    html = explained["sections"][0]["html"]
    assert "<strong>Raised if</strong>" in html and "<code>weaker_than_reference</code>" in html  # not explained here
    assert "href" not in explained["severity"] and "the results" in explained["severity"]  # a path is only its text
    both = flag_explanations(["too_few_samples", "weaker_than_reference"], doc)
    assert '<a href="#flag-weaker_than_reference"><code>weaker_than_reference</code></a>' in both["sections"][0]["html"]
    assert not flag_explanations(["too_few_samples"], tmp_path / "missing.md")["found"]
