"""``python -m bench run|zoo|costs``: running a matrix, training the zoo, measuring attack costs.

The printing side only: the work is in bench/api.py (run), bench/studies/zoo.py and
bench/studies/costs.py, which print nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.core import interrupt
from bench.core.errors import BenchError, did_you_mean

if TYPE_CHECKING:
    import pandas as pd

    from bench.inputs.matrix import Matrix
    from bench.run.execute import Progress, RunResult

SUMMARY = "adversarial robustness of image-forensics detectors against ART and Foolbox attacks"


def add_parsers(sub: Any) -> None:
    """Register ``run``, ``zoo`` and ``costs`` on the ``python -m bench`` parser."""
    run = sub.add_parser("run", help="run a matrix of task x detector x defence x attack x epsilon")
    zoo = sub.add_parser("zoo", help="train every detector on every task of a matrix; clean-accuracy table")
    costs = sub.add_parser(
        "costs",
        help="time every attack against the model evaluations it makes, the libraries' PGD against PyTorch, "
        "epsilon sweeps against their largest epsilon and minimum-norm attacks against one PGD run, on a "
        "matrix's trained models",
    )
    for cmd, default in ((run, "default"), (zoo, "zoo"), (costs, "default")):
        cmd.add_argument(
            "--matrix",
            nargs="?",
            const="",
            default="",
            metavar="FILE",
            help="matrix TOML file (default: the built-in matrix of --profile)",
        )
        cmd.add_argument(
            "--profile",
            default=None,
            help=f"built-in matrix to run (default: {default}); with FILE, the name of the output folder",
        )
        cmd.add_argument(
            "--images",
            default=None,
            metavar="DIR",
            help="folder of your own pristine images (PNG, TIFF, JPEG, BMP, PGM) instead of the built-in photos",
        )
        cmd.add_argument("--results", default="results", metavar="DIR", help="results folder (default: results)")
        cmd.add_argument("--cache-dir", default=None, metavar="DIR", help="cache folder (default: RESULTS/.cache)")
        cmd.add_argument("-q", "--quiet", action="store_true", help="print only the summary")
        cmd.set_defaults(default_profile=default, handler=_run)
    for cmd in (run, zoo):
        where = cmd.add_argument_group("executor and device (the same numbers on any of them)")
        where.add_argument(
            "--workers",
            type=_count,
            default=None,
            metavar="N",
            help="run on an embedded Dask cluster of N worker processes on this machine, each with cores/N torch "
            "threads (default: serial, in this process)",
        )
        where.add_argument(
            "--scheduler",
            default=None,
            metavar="ADDRESS",
            help="run on an existing Dask cluster ('dask scheduler' / 'dask worker', dask-jobqueue on SLURM or PBS, "
            "Kubernetes); the cache folder must be on a file system every worker sees",
        )
        where.add_argument(
            "--scheduler-file", default=None, metavar="FILE", help="as --scheduler, by the scheduler's JSON file"
        )
        where.add_argument(
            "--device",
            default=None,
            metavar="DEVICE",
            help="auto, cpu, cuda or cuda:N: where training, attacks, probes and transfer run (default: the "
            "matrix's device key, auto: CUDA when torch sees it). The device kind is part of every model key",
        )
    run.add_argument(
        "--strict",
        nargs="?",
        const="failures",
        default=None,
        choices=("failures", "all"),
        help="exit with status 3, after writing every output, when a trust flag reporting a failure of the "
        "evaluation is raised (masked or noisy gradients, libraries disagreeing, ...); --strict=all: any flag, "
        "limits of precision (too few samples) included (docs/flags.md, Severity)",
    )
    costs.add_argument(
        "--defense",
        action="append",
        default=None,
        metavar="NAME",
        help="measure only this training-time defence of the matrix (repeatable)",
    )
    costs.add_argument(
        "--measure",
        action="append",
        default=None,
        choices=("floor", "pgd", "sweep", "minimum-norm"),
        help="what to measure (repeatable; default: all): floor - every attack against the model evaluations "
        "it makes; pgd - ART's and Foolbox's PGD-10 against the same PGD written in PyTorch; sweep - an "
        "epsilon sweep against its largest epsilon; minimum-norm - each white-box minimum-norm attack "
        "against one PGD run",
    )
    costs.add_argument(
        "--training",
        type=int,
        default=0,
        metavar="EPOCHS",
        help="instead: time EPOCHS epochs of training under every training-time defence of the "
        "matrix against the undefended detector, back to back",
    )


# the flag of each argument of bench.api.prepare: its errors name them (the Python API's name the arguments)
FLAGS = {
    "images": "--images",
    "results_dir": "--results",
    "cache_dir": "--cache-dir",
    "device": "--device",
    "workers": "--workers",
    "scheduler": "--scheduler",
    "scheduler_file": "--scheduler-file",
}


def _count(text: str) -> int:
    """A positive count (argparse's ``type``: a bad value is one line, exit 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; allowed: 1 to 1024") from None
    if not 1 <= value <= 1024:
        raise argparse.ArgumentTypeError(f"{value} is out of range; allowed: 1 to 1024")
    return value


def _matrix(args: argparse.Namespace) -> Matrix:
    from bench.inputs.matrix import builtin_matrix_path, load_matrix

    train_only = args.command == "zoo"
    if args.matrix:
        return load_matrix(args.matrix, profile=args.profile, train_only=train_only)
    return load_matrix(builtin_matrix_path(args.profile or args.default_profile), train_only=train_only)


def _refuse_bad_options(args: argparse.Namespace, matrix: Matrix) -> None:
    """Refuse bad options before the heavy imports (torch, pandas, ART and Foolbox come with bench.api
    and the run): the checks ``api.prepare`` makes again, here with the light validators. Only
    ``--device cuda`` on a machine without CUDA needs torch to tell (api.prepare)."""
    from bench.core.cache import check_writable
    from bench.core.devices import parse_device
    from bench.inputs.photos import folder_source

    if args.command == "costs":
        if args.images:
            raise BenchError("costs: --images is not supported; it measures on the built-in data")
        if args.training < 0:
            raise BenchError(f"--training {args.training}: not allowed; a number of epochs >= 1")
    else:
        executors = (
            ("--workers", args.workers),
            ("--scheduler", args.scheduler),
            ("--scheduler-file", args.scheduler_file),
        )
        chosen = [flag for flag, value in executors if value is not None]
        if len(chosen) > 1:  # the rule of api.executor, which needs the heavy imports
            raise BenchError(
                f"{' and '.join(chosen)}: choose one executor; allowed: --workers N, --scheduler ADDRESS or "
                "--scheduler-file FILE"
            )
        if args.scheduler is not None and not args.scheduler.strip():
            raise BenchError("--scheduler: empty; allowed: a scheduler address such as tcp://10.0.0.5:8786")
        if args.scheduler_file is not None and not Path(args.scheduler_file).is_file():
            raise BenchError(
                f"--scheduler-file {args.scheduler_file}: no such file; allowed: the JSON file "
                "`dask scheduler --scheduler-file` writes"
            )
        if args.device is not None:
            parse_device(args.device, "--device")
        if args.images is not None:
            folder_source(args.images)  # a bad image refused here; api.prepare, given the path, opens them again
    check_writable(Path(args.results) / matrix.profile, "--results")
    check_writable(Path(args.cache_dir) if args.cache_dir is not None else Path(args.results) / ".cache", "--cache-dir")


def _run(args: argparse.Namespace) -> int:
    matrix = _matrix(args)
    with interrupt.handling():  # Ctrl-C and SIGTERM end the run even when Python swallows the first
        status = _run_or_cost(args, matrix)
        if interrupt.requested() and status != 130:  # swallowed after the last check: the work is saved
            print("interrupted", file=sys.stderr)
            return 130
        return status


def _run_or_cost(args: argparse.Namespace, matrix: Matrix) -> int:
    _refuse_bad_options(args, matrix)
    from bench.cli.progress import Display

    if args.command == "costs":
        start = time.perf_counter()

        def progress(message: str) -> None:
            if not args.quiet:
                print(f"[{time.perf_counter() - start:7.1f}s] {message}", file=sys.stderr, flush=True)

        return _costs(args, matrix, progress)
    # a live display of the counts on a terminal, the step lines as today in a log
    with Display(quiet=args.quiet) as display:
        return _execute(args, matrix, display)


def _execute(args: argparse.Namespace, matrix: Matrix, display: Any) -> int:
    from bench import api

    runner, folder = api.prepare(
        matrix,
        images=args.images,
        results_dir=args.results,
        cache_dir=args.cache_dir,
        progress=display.line,
        warn=display.warn,
        device=args.device,
        workers=args.workers,
        scheduler=args.scheduler,
        scheduler_file=args.scheduler_file,
        update=display.update,
        flags=FLAGS,
    )
    progress = display.line
    try:
        if args.command == "zoo":
            return _zoo(runner, folder)
        progress(f"-> {folder.folder}")
        result = runner.run()
    except KeyboardInterrupt:
        display.outcome = "interrupted"
        stats = runner.stats
        print(
            f"interrupted: {stats['cells_computed'] + stats['cells_cached']} finished cells and "
            f"{stats['models_trained']} trained models are saved in {folder.folder} and the cache; "
            "rerun to continue",
            file=sys.stderr,
        )
        if (folder.folder / "matrix.parquet").is_file():  # the figures of the finished cells, not stale ones
            api.draw_run_figures(folder.folder)
        return 130
    except OSError as err:  # a full disk, a folder removed under the run: the finished work is kept
        stats = runner.stats
        print(
            f"error: cannot write {err.filename or 'a file'}: {err.strerror or err}; "
            f"{stats['cells_computed'] + stats['cells_cached']} finished cells and {stats['models_trained']} "
            "trained models are kept in the cache; make room and rerun to continue",
            file=sys.stderr,
        )
        return 1
    api.draw_run_figures(folder.folder)
    _summary(result, folder.folder)
    if result.stats["cells_failed"]:
        return 1
    if args.strict is None:
        return 0
    from bench.core.schema import flagged_rows

    return 3 if flagged_rows(result.table, include_precision=args.strict == "all").any() else 0


def _zoo(runner: Any, folder: Any) -> int:
    from bench.outputs.formats import ZOO_TABLE
    from bench.outputs.pages import zoo_markdown
    from bench.studies.zoo import run_zoo

    models = run_zoo(runner, folder)
    print(zoo_markdown(models))
    print(f"table written to {folder.folder / ZOO_TABLE}")
    return 1 if runner.stats["models_failed"] else 0


def _costs(args: argparse.Namespace, matrix: Matrix, progress: Progress) -> int:

    from bench.core.cache import check_writable
    from bench.outputs.formats import COSTS, TRAINING_COSTS, ResultsFolder, results_folder
    from bench.run.store import Store
    from bench.studies.costs import MEASURES, measure_costs, measure_training_costs
    from defenses import DEFENSES

    cache = Path(args.cache_dir) if args.cache_dir is not None else Path(args.results) / ".cache"
    out = ResultsFolder(results_folder(args.results, matrix.profile))
    check_writable(out.folder, "--results")
    check_writable(cache, "--cache-dir")
    store = Store(cache, warn=lambda line: print(line, file=sys.stderr, flush=True))
    if args.training:
        if "none" not in [d.name for d in matrix.defenses]:
            raise BenchError("costs --training: the matrix has no 'none' defence to compare with")
        table = measure_training_costs(matrix, store=store, epochs=args.training, progress=progress)
        _print_frame(table[["detector", "defense", "seconds_per_epoch", "ratio"]], width=90)
        print(f"-> {out.write_csv(TRAINING_COSTS, table)}")
        return 0
    chosen = None
    if args.defense:
        chosen = tuple(DEFENSES.resolve(d, "--defense") for d in args.defense)
        missing = [str(d) for d in chosen if d not in matrix.defenses]
        if missing:
            allowed = [str(d) for d in matrix.defenses]
            raise BenchError(
                f"--defense {', '.join(missing)}: not in the matrix; allowed: {', '.join(allowed)}"
                f"{did_you_mean(missing[0], allowed)}"
            )
    measures = tuple(dict.fromkeys(args.measure)) if args.measure else MEASURES
    table = measure_costs(matrix, store=store, defenses=chosen, measures=measures, progress=progress)
    if "floor_seconds" in table:
        floors = table[table["measure"] == "attack / floor"]
        _print_frame(
            floors[["detector", "defense", "attack", "seconds", "floor_seconds", "ratio", "bound", "queries"]], width=50
        )
        table_rest = table[table["measure"] != "attack / floor"]
    else:
        table_rest = table
    columns = [
        "detector",
        "defense",
        "measure",
        "attack",
        "seconds",
        "reference_seconds",
        "ratio",
        "max_gap",
        "norm_scale",
        "shape_gap",
    ]
    if len(table_rest):
        _print_frame(table_rest[[c for c in columns if c in table_rest]].dropna(axis=1, how="all"), width=50)
    print(f"-> {out.write_csv(COSTS, table)}")
    return 0


def _print_frame(frame: pd.DataFrame, width: int) -> None:
    import pandas as pd

    with pd.option_context(
        "display.width", 220, "display.max_colwidth", width, "display.float_format", "{:.2f}".format
    ):
        print(frame.to_string(index=False))


def _summary(result: RunResult, folder: Path) -> None:
    import pandas as pd

    from bench.core.schema import headline

    table = headline(result.table)  # across the training seeds where there are several
    ok = table[table["error"] == ""]
    floats = ok[(ok["quantized"] == "float") & (ok["postprocess"] == "none")]
    if len(floats):
        index = ["detector", "defense", "attack", "gradient", "norm"]
        wide = floats.pivot_table(index=index, columns="epsilon_255", values="robust_accuracy", sort=False)
        wide.columns = [f"e={c:g}" for c in wide.columns]
        clean = floats.groupby(index, sort=False)["clean_accuracy"].first()
        wide.insert(0, "clean", clean)
        union = lambda f: ",".join(dict.fromkeys(n for v in f for n in v.split(",") if n))
        wide["flags"] = (
            ok.groupby(index, sort=False)["flags"].agg(union).reindex(wide.index).fillna("")
        )  # any eps/variant
        ensemble = ok[ok["attack"] == "ensemble"].assign(variant=lambda t: t["quantized"] + "/" + t["postprocess"])
        index = ["detector", "defense", "norm", "variant"]
        variants = ensemble.pivot_table(index=index, columns="epsilon_255", values="robust_accuracy", sort=False)
        variants.columns = [f"e={c:g}" for c in variants.columns]
        with pd.option_context(
            "display.width", 220, "display.max_colwidth", 60, "display.float_format", "{:.3f}".format
        ):
            print(
                "robust accuracy of float adversarial images; Linf eps = e/255, L2 eps = e/255*sqrt(pixels) "
                f"(n per cell: {', '.join(map(str, sorted(set(ok['n']))))})"
            )
            print(wide.to_string())
            if len(variants):
                print("ensemble (worst case per sample over all attacks) after 8-bit rounding and JPEG recompression")
                print(variants.to_string())
    _flag_summary(table)
    failed = result.table[result.table["error"] != ""].drop_duplicates("cell")
    for _, row in failed.iterrows():
        print(f"FAILED {row['detector']} | {row['defense']} | {row['attack']}: {row['error']}")
    s = result.stats
    print(
        f"{s['cells']} cells: {s['cells_computed']} computed, {s['cells_cached']} from cache, {s['cells_failed']} failed; "
        f"{s['models_trained']} models trained; {s['total_seconds']:.1f}s -> {folder}"
    )


def _flag_summary(table: pd.DataFrame, limit: int = 40) -> None:
    """The trust flags raised: rows per flag with the link to its explanation, then each flagged attack."""
    from bench.outputs.summary import flagged_curves
    from bench.run.flags import flag_counts, link, severity

    counts = {name: n for name, n in flag_counts(table).items() if n}
    if not counts:
        print(f"trust flags: none raised ({link('')[:-1]})")
        return
    rows = int((table["flags"] != "").sum())
    print(f"TRUST FLAGS: {len(counts)} raised, on {rows} of {len(table)} rows (flags column of matrix.csv)")
    for name, n in counts.items():
        print(f"  {name:24s} {n:6d} rows  {severity(name):9s}  {link(name)}")
    cells = flagged_curves(table)
    for _, c in cells.head(limit).iterrows():
        print(
            f"  {c['flag']:24s} {c['detector']} | {c['defense']} | {c['attack']} ({c['gradient']}, {c['norm']}): "
            f"e={c['epsilons_255']} [{c['variants']}]"
        )
    if len(cells) > limit:
        print(f"  ... and {len(cells) - limit} more flagged attack curves (flag_* columns of matrix.csv)")
