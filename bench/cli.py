"""Command line: ``python -m bench run|zoo|costs|list|figures|tables|report|check``.

Bad input (matrix file, options, image folder) is reported as one line on stderr with exit
status 2 and nothing written; an interrupted run keeps every finished cell and exits 130.
``run --strict`` exits 3 when any trust flag (docs/flags.md) is raised, after writing every
output (failed cells, status 1, take precedence).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from bench import commands
from bench.errors import BenchError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse's default prints usage too)
        raise BenchError(f"{self.prog}: {message}")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m bench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser("run", help="run a matrix of task x detector x defence x attack x epsilon")
    zoo = sub.add_parser("zoo", help="train every detector on every task of a matrix; clean-accuracy table")
    costs = sub.add_parser("costs", help="time epsilon sweeps against their largest epsilon and minimum-norm attacks "
                                         "against one PGD run, on a matrix's trained models")  # fmt: skip
    for cmd, default in ((run, "default"), (zoo, "zoo"), (costs, "default")):
        cmd.add_argument("--matrix", nargs="?", const="", default="", metavar="FILE",
                         help="matrix TOML file (default: the built-in matrix of --profile)")  # fmt: skip
        cmd.add_argument("--profile", default=None,
                         help=f"built-in matrix to run (default: {default}); with FILE, the name of the output folder")  # fmt: skip
        cmd.add_argument("--images", default=None, metavar="DIR",
                         help="folder of your own pristine images (PNG, TIFF, JPEG, BMP, PGM) instead of the built-in photos")  # fmt: skip
        cmd.add_argument("--results", default="results", metavar="DIR", help="results folder (default: results)")
        cmd.add_argument("--cache-dir", default=None, metavar="DIR", help="cache folder (default: RESULTS/.cache)")
        cmd.add_argument("-q", "--quiet", action="store_true", help="print only the summary")
        cmd.set_defaults(default_profile=default)
    run.add_argument("--strict", action="store_true",
                     help="exit with status 3 when any trust flag is raised (docs/flags.md), after writing every output")  # fmt: skip
    zoo.add_argument("--readme", default="README.md", metavar="FILE",
                     help="copy the table into FILE between its zoo-table markers (default: README.md, if present)")  # fmt: skip
    costs.add_argument("--defense", action="append", default=None, metavar="NAME",
                       help="measure only this training-time defence of the matrix (repeatable)")  # fmt: skip
    costs.add_argument("--training", type=int, default=0, metavar="EPOCHS",
                       help="instead: time EPOCHS epochs of training under every training-time defence of the "
                            "matrix against the undefended detector, back to back")  # fmt: skip
    ls = sub.add_parser("list", help="list registered tasks, detectors, defences, attacks and profiles")
    ls.add_argument("family", nargs="?", choices=["tasks", "detectors", "defenses", "attacks", "profiles"])
    commands.add_parsers(sub)  # figures, tables, report, check (bench/commands.py)
    return parser


def _list(family: str | None) -> None:
    from bench.attacks import ATTACKS
    from bench.matrix import builtin_profiles
    from bench.tasks import TASKS
    from defenses import DEFENSES
    from detectors import DETECTORS

    for name, registry in (("tasks", TASKS), ("detectors", DETECTORS), ("defenses", DEFENSES), ("attacks", ATTACKS)):
        if family in (None, name):
            print(f"{name}:")
            for entry_name in registry.names():
                spec = registry.resolve(entry_name)
                info = registry.entry(entry_name).info
                extra = f" [{info.parameters:,} parameters at 1 channel, 2 classes]" if name == "detectors" else ""
                print(f"  {str(spec):58s} {info.description}{extra}")
    if family in (None, "profiles"):
        print("profiles:")
        for profile in builtin_profiles():
            from bench.matrix import builtin_matrix_path, load_matrix

            print(f"  {profile:58s} {load_matrix(builtin_matrix_path(profile), train_only=True).description}")


def _run(args: argparse.Namespace) -> int:
    from bench.matrix import builtin_matrix_path, load_matrix
    from bench.runner import Runner

    train_only = args.command == "zoo"
    if args.matrix:
        matrix = load_matrix(args.matrix, profile=args.profile, train_only=train_only)
    else:
        matrix = load_matrix(builtin_matrix_path(args.profile or args.default_profile), train_only=train_only)
    start = time.perf_counter()

    def progress(message: str) -> None:
        if not args.quiet:
            print(f"[{time.perf_counter() - start:7.1f}s] {message}", file=sys.stderr, flush=True)

    def terminate(signum: int, frame: object) -> None:  # SIGTERM (CI timeouts, kill) ends like Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    if args.command == "costs":
        return _costs(args, matrix, progress)
    runner = Runner(matrix, images=args.images, results_dir=args.results, cache_dir=args.cache_dir, progress=progress)
    try:
        if train_only:
            return _zoo(runner, Path(args.readme))
        result = runner.run()
    except KeyboardInterrupt:
        print(f"interrupted: {runner.stats['cells_computed'] + runner.stats['cells_cached']} finished cells and "
              f"{runner.stats['models_trained']} trained models are saved in {runner.out_dir} and the cache; "
              "rerun to continue", file=sys.stderr)  # fmt: skip
        return 130
    _summary(result)
    if result.stats["cells_failed"]:
        return 1
    return 3 if args.strict and (result.table["flags"] != "").any() else 0


def _zoo(runner, readme: Path) -> int:  # noqa: ANN001 - Runner, imported lazily
    from bench.zoo import run_zoo, update_readme, zoo_markdown

    models = run_zoo(runner)
    table = zoo_markdown(models)
    print(table)
    if readme.is_file() and update_readme(readme, table):
        print(f"table written to {runner.out_dir / 'zoo.md'} and {readme}")
    else:
        print(f"table written to {runner.out_dir / 'zoo.md'} ({readme} has no zoo-table markers; left alone)")
    return 1 if runner.stats["models_failed"] else 0


def _costs(args: argparse.Namespace, matrix, progress) -> int:  # noqa: ANN001
    import pandas as pd

    from bench.costs import measure_costs
    from defenses import DEFENSES

    from bench.costs import measure_training_costs

    if args.images:
        raise BenchError("costs: --images is not supported; it measures on the built-in data")
    if args.training < 0:
        raise BenchError(f"--training {args.training}: not allowed; a number of epochs >= 1")
    if args.training:
        if "none" not in [d.name for d in matrix.defenses]:
            raise BenchError("costs --training: the matrix has no 'none' defence to compare with")
        table = measure_training_costs(matrix, epochs=args.training, results_dir=args.results,
                                       cache_dir=args.cache_dir, progress=progress)  # fmt: skip
        with pd.option_context("display.width", 220, "display.max_colwidth", 90, "display.float_format", "{:.2f}".format):
            print(table[["detector", "defense", "seconds_per_epoch", "ratio"]].to_string(index=False))
        print(f"-> {Path(args.results) / matrix.profile / 'training-costs.csv'}")
        return 0
    chosen = None
    if args.defense:
        chosen = tuple(DEFENSES.resolve(d, "--defense") for d in args.defense)
        missing = [str(d) for d in chosen if d not in matrix.defenses]
        if missing:
            raise BenchError(f"--defense {', '.join(missing)}: not in the matrix; allowed: "
                             f"{', '.join(str(d) for d in matrix.defenses)}")  # fmt: skip
    table = measure_costs(matrix, results_dir=args.results, cache_dir=args.cache_dir, defenses=chosen, progress=progress)
    columns = ["detector", "defense", "measure", "attack", "seconds", "reference_seconds", "ratio", "max_gap",
               "norm_scale", "shape_gap"]
    with pd.option_context("display.width", 220, "display.max_colwidth", 50, "display.float_format", "{:.2f}".format):
        print(table[columns].to_string(index=False))
    print(f"-> {Path(args.results) / matrix.profile / 'costs.csv'}")
    return 0


def _summary(result) -> None:  # noqa: ANN001 - RunResult, imported lazily
    import pandas as pd

    table = result.table
    ok = table[table["error"] == ""]
    floats = ok[(ok["quantized"] == "float") & (ok["postprocess"] == "none")]
    if len(floats):
        index = ["detector", "defense", "attack", "gradient", "norm"]
        wide = floats.pivot_table(index=index, columns="epsilon_255", values="robust_accuracy", sort=False)
        wide.columns = [f"e={c:g}" for c in wide.columns]
        clean = floats.groupby(index, sort=False)["clean_accuracy"].first()
        wide.insert(0, "clean", clean)
        union = lambda f: ",".join(dict.fromkeys(n for v in f for n in v.split(",") if n))  # noqa: E731
        wide["flags"] = ok.groupby(index, sort=False)["flags"].agg(union).reindex(wide.index).fillna("")  # any eps/variant
        ensemble = ok[ok["attack"] == "ensemble"].assign(variant=lambda t: t["quantized"] + "/" + t["postprocess"])
        index = ["detector", "defense", "norm", "variant"]
        variants = ensemble.pivot_table(index=index, columns="epsilon_255", values="robust_accuracy", sort=False)
        variants.columns = [f"e={c:g}" for c in variants.columns]
        with pd.option_context("display.width", 220, "display.max_colwidth", 60, "display.float_format", "{:.3f}".format):
            print("robust accuracy of float adversarial images; Linf eps = e/255, L2 eps = e/255*sqrt(pixels) "
                  "(n per cell: %s)" % ", ".join(map(str, sorted(set(ok["n"])))))  # fmt: skip
            print(wide.to_string())
            if len(variants):
                print("ensemble (worst case per sample over all attacks) after 8-bit rounding and JPEG recompression")
                print(variants.to_string())
    _flag_summary(table)
    failed = table[table["error"] != ""].drop_duplicates("cell")
    for _, row in failed.iterrows():
        print(f"FAILED {row['detector']} | {row['defense']} | {row['attack']}: {row['error']}")
    s = result.stats
    print(f"{s['cells']} cells: {s['cells_computed']} computed, {s['cells_cached']} from cache, {s['cells_failed']} failed; "
          f"{s['models_trained']} models trained; {s['total_seconds']:.1f}s -> {result.out_dir}")  # fmt: skip


def _flag_summary(table, limit: int = 40) -> None:  # noqa: ANN001 - DataFrame, imported lazily
    """The trust flags raised: rows per flag with the link to its explanation, then each flagged attack."""
    from bench.flags import flag_counts, flagged_cells, link

    counts = {name: n for name, n in flag_counts(table).items() if n}
    if not counts:
        print(f"trust flags: none raised ({link('')[:-1]})")
        return
    rows = int((table["flags"] != "").sum())
    print(f"TRUST FLAGS: {len(counts)} raised, on {rows} of {len(table)} rows (flags column of matrix.csv)")
    for name, n in counts.items():
        print(f"  {name:24s} {n:6d} rows  {link(name)}")
    cells = flagged_cells(table)
    for _, c in cells.head(limit).iterrows():
        print(f"  {c['flag']:24s} {c['detector']} | {c['defense']} | {c['attack']} ({c['gradient']}, {c['norm']}): "
              f"e={c['epsilons_255']} [{c['variants']}]")  # fmt: skip
    if len(cells) > limit:
        print(f"  ... and {len(cells) - limit} more flagged attack curves (flag_* columns of matrix.csv)")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    try:
        args = _parser().parse_args(argv)
        if args.command == "list":
            _list(args.family)
            return 0
        if args.command in commands.COMMANDS:
            return commands.run(args)
        return _run(args)
    except BenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
