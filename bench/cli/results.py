"""``python -m bench figures|tables|report|check``: processing a finished results folder.

The printing side only: the work is in bench/outputs (figures.py, latex.py, report.py, pages.py,
check.py), which prints nothing. Imports stay cheap until a command runs.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.outputs.figures import FigureOutput
    from bench.outputs.latex import TableOutput

DEFAULT_RESULTS = "results/default"
DEFAULT_REFERENCES = "results/reference"
DEFAULT_PAGES = "docs/results"


def add_parsers(sub: Any) -> None:
    """Register the four sub-commands on the ``python -m bench`` parser."""
    where = "a results/<profile> folder of 'python -m bench run' (default: %(default)s)"
    figures = sub.add_parser("figures", help="paper figures (PDF + PNG) from a results folder -> RESULTS_DIR/figures/")
    tables = sub.add_parser("tables", help="LaTeX (booktabs) accuracy tables -> RESULTS_DIR/tables/")
    report = sub.add_parser(
        "report",
        help="figures, tables and one self-contained HTML page -> RESULTS_DIR/report.html; with --markdown, "
        "the committed reference table and Markdown results page instead",
    )
    for cmd in (figures, tables):
        cmd.add_argument("results_dir", nargs="?", default=DEFAULT_RESULTS, metavar="RESULTS_DIR", help=where)
    report.add_argument(
        "results_dir",
        nargs="?",
        default=None,
        metavar="RESULTS_DIR",
        help=f"a results/<profile> folder of 'python -m bench run' or 'zoo' (default: {DEFAULT_RESULTS}; with "
        "--markdown: every reference table in --reference-dir)",
    )
    report.add_argument(
        "--markdown",
        action="store_true",
        help="write RESULTS_DIR's reference table (REFERENCE_DIR/<name>.csv and .json), its Markdown page "
        "(PAGES_DIR/<name>.md) and the index PAGES_DIR/README.md; without RESULTS_DIR, re-render every page "
        "and the index from the reference tables (no figures, no HTML)",
    )
    report.add_argument(
        "--reference-dir",
        default=DEFAULT_REFERENCES,
        metavar="DIR",
        help="reference tables, with --markdown (default: %(default)s)",
    )
    report.add_argument(
        "--pages-dir",
        default=DEFAULT_PAGES,
        metavar="DIR",
        help="Markdown pages, with --markdown (default: %(default)s)",
    )
    for cmd in (figures, report):
        cmd.add_argument(
            "--epsilon",
            type=float,
            default=None,
            metavar="E",
            help="budget (8-bit units) of the trade-off, heatmap and transfer figures "
            "(default: the epsilon where the models differ most)",
        )
    check = sub.add_parser(
        "check",
        help="compare a results folder with a committed baseline; exit 0 unchanged, 1 regression, 2 cannot compare",
    )
    check.add_argument(
        "results_dir",
        nargs="?",
        default=None,
        metavar="RESULTS_DIR",
        help="results folder (default: results/<the baseline's name>)",
    )
    check.add_argument(
        "--baseline",
        default=None,
        metavar="CSV",
        help="baseline table (default: results/baseline/<the results folder's name>.csv)",
    )
    check.add_argument("--update", action="store_true", help="rewrite the baseline from the results folder instead")
    check.add_argument(
        "--min-effect",
        type=float,
        default=5.0,
        metavar="POINTS",
        help="smallest change in percentage points that fails a cell (default: 5)",
    )
    check.add_argument(
        "-v", "--verbose", action="store_true", help="list every value that changed, within tolerance too"
    )
    check.add_argument(
        "--alpha",
        type=float,
        default=0.05,
        help="significance level of the two-sided Fisher exact test (default: 0.05)",
    )
    for cmd in (figures, tables, report, check):
        cmd.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run one of the four commands; returns the exit status."""
    start = time.perf_counter()
    if args.command == "check":
        return _check(args)
    if args.command == "report" and args.markdown:
        return _markdown(args)
    if args.command == "report" and args.results_dir is None:
        args.results_dir = DEFAULT_RESULTS
    if args.command == "figures":
        from bench.outputs.figures import make_figures

        figures = make_figures(args.results_dir, epsilon=args.epsilon)
        _print_figures(figures)
    elif args.command == "tables":
        from bench.outputs.latex import make_tables

        tables = make_tables(args.results_dir)
        _print_tables(tables)
    else:
        from bench.outputs.report import make_report

        report = make_report(args.results_dir, epsilon=args.epsilon)
        _print_figures(report.figures)
        _print_tables(report.tables)
        flagged = f"; {report.flagged} flagged rows shown at the top" if report.flagged else ""
        print(f"report: {report.path}{flagged}")
    print(f"done in {time.perf_counter() - start:.1f}s")
    return 0


def _markdown(args: argparse.Namespace) -> int:
    from bench.core.errors import BenchError
    from bench.outputs.pages import publish

    if args.epsilon is not None:
        raise BenchError("report --markdown: --epsilon is not used (the page picks its transfer epsilon itself)")
    results_dir = Path(args.results_dir) if args.results_dir is not None else None
    for path in publish(results_dir, reference_dir=Path(args.reference_dir), pages_dir=Path(args.pages_dir)):
        print(f"written: {path}")
    return 0


def _print_figures(figures: FigureOutput) -> None:
    if figures.epsilon is not None:
        print(f"single-budget figures at e = {figures.epsilon:g}/255")
    for name, paths in figures.written.items():
        print(f"figure {name}: {', '.join(str(p) for p in paths)}")
    for name, why in figures.skipped.items():
        print(f"figure {name}: skipped, {why}")


def _print_tables(tables: TableOutput) -> None:
    for path in tables.written:
        print(f"table: {path}")
    for name, why in tables.skipped.items():
        print(f"table {name}: skipped, {why}")


def _check(args: argparse.Namespace) -> int:
    import numpy as np
    import pandas as pd

    from bench.outputs.check import KEYS, check, write_baseline
    from bench.outputs.summary import short_labels

    results_dir = args.results_dir
    baseline = args.baseline
    if results_dir is None:
        results_dir = str(Path("results") / Path(baseline).stem) if baseline else DEFAULT_RESULTS
    if baseline is None:
        baseline = str(Path("results") / "baseline" / f"{Path(results_dir).name}.csv")
    if args.update:
        csv, meta = write_baseline(results_dir, baseline)
        print(f"baseline written: {csv} and {meta} (from {results_dir})")
        return 0
    comparison = check(results_dir, baseline, min_effect=args.min_effect / 100.0, alpha=args.alpha)
    for note in comparison.notes:
        print(f"note: {note}")
    changed = comparison.changed
    shown = changed if args.verbose else comparison.failed
    if len(shown):
        shown = shown.copy()
        for column in ("detector", "defense", "attack"):
            shown[column] = shown[column].map(short_labels(list(shown[column])))
        shown["variant"] = shown["quantized"] + "/" + shown["postprocess"]
        shown["change"] = (100 * shown["change"]).map(lambda v: f"{v:+.1f}")
        columns = [
            "status",
            "metric",
            "task",
            "detector",
            "defense",
            "attack",
            "gradient",
            "norm",
            "variant",
            "epsilon_255",
            "n",
            "baseline",
            "now",
            "change",
            "p_value",
        ]
        with pd.option_context(
            "display.width",
            250,
            "display.max_colwidth",
            40,
            "display.max_rows",
            1000,
            "display.float_format",
            "{:.3f}".format,
        ):
            print(
                f"changed values (change in points; a value fails when |change| >= {args.min_effect:g} and the "
                f"two-sided Fisher exact p < {args.alpha:g}):"
            )
            print(shown[columns].to_string(index=False))
    drift = changed[changed["status"] == "ok"]
    if len(drift) and not args.verbose:
        top = drift.iloc[int(np.argmax(drift["change"].abs().to_numpy()))]
        print(
            f"{len(drift)} more values differ within tolerance (largest {100 * top['change']:+.1f} points, p = "
            f"{top['p_value']:.2f}: {top['detector'].split('[')[0]} | {top['defense']} | {top['attack'].split('[')[0]} "
            f"{top['quantized']}/{top['postprocess']} e={top['epsilon_255']:g}); -v lists them"
        )
    failed = comparison.failed
    if len(failed):
        cells = failed.drop_duplicates(["task", "detector", "defense", "attack", "gradient"])
        print(
            f"REGRESSION: {len(failed)} of {2 * comparison.compared} compared values ({len(failed.drop_duplicates(KEYS))} "
            f"of {comparison.compared} rows) changed beyond tolerance, in these cells:"
        )
        for _, c in cells.iterrows():
            print(f"  {c['task']} | {c['detector']} | {c['defense']} | {c['attack']} ({c['gradient']})")
        return 1
    print(
        f"unchanged: {comparison.compared} cells x {{clean, robust}} accuracy within tolerance of {baseline} "
        f"({len(changed)} values differ at all)"
    )
    return 0
