"""The self-contained HTML report: content, flags at the top, and every image rendered in Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from bench.core.schema import FLAG_NAMES
from bench.outputs.figures import FIGURES
from bench.outputs.report import make_report

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


def test_report_is_self_contained_and_complete(report) -> None:
    page = report.path.read_text()
    sources = re.findall(r"<img[^>]* src='([^']*)'", page)
    assert len(sources) == len(report.figures.written) == len(FIGURES)  # the smoke run has what every figure needs
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r"(src|href)=['\"]?(https?:|file:|/|\.\./)", page)  # nothing outside the page
    assert "<script" not in page
    for text in ("Versions", "Configuration", "torch", "adversarial-robustness-toolbox", "median3", "Tables"):
        assert text in page
    assert page.count("<table>") >= 4  # accuracy linf, l2, models, versions
    assert (report.path.parent / "tables" / "models.tex").is_file()


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
    flags_at, figures_at = page.index("id=flags"), page.index("<h2>Figures")
    assert flags_at < figures_at and "single_beats_iterative" in page[flags_at:figures_at]
    assert "art.fgsm" in page[flags_at:figures_at] and "art.pgd" not in page[flags_at:figures_at]
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
    assert figures >= 5, figures
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
