"""Command line: ``python -m bench run|zoo|costs|list|figures|tables|report|check``.

Installed as the console script ``forensic-bench`` too (pyproject.toml), the same program.
``running.py`` runs (run, zoo, costs), ``results.py`` processes finished results folders (figures,
tables, report, check), ``listing.py`` lists the registries. Bad input (matrix file, options,
image folder) is reported as one line on stderr with exit status 2 and nothing written, before
torch, pandas, ART or Foolbox are imported; an unknown name gets the closest allowed one ("did you
mean"). An interrupted run keeps every finished cell and exits 130. ``run --strict`` exits 3 when a
trust flag reporting a failure of the evaluation (docs/flags.md, Severity) is raised,
``--strict=all`` when any is, after writing every output (failed cells, status 1, take precedence).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, NoReturn

from bench.cli import listing, results, running
from bench.core.errors import BenchError, did_you_mean

DISTRIBUTION = "forensic-robustness-bench"  # pyproject.toml's [project] name
SCRIPT = "forensic-bench"  # its [project.scripts] entry: the same as python -m bench


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2 (argparse's default prints usage too)
        raise BenchError(f"{self.prog}: {message}")

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        # argparse's check and message, plus the closest choice (as Python 3.14's suggest_on_error)
        if action.choices is not None and value not in action.choices:
            choices = [str(c) for c in action.choices]
            raise argparse.ArgumentError(
                action,
                f"invalid choice: {value!r} (choose from {', '.join(map(repr, choices))})"
                f"{did_you_mean(str(value), choices)}",
            )


def _version() -> str:
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed; pip install -e .)"


def _parser() -> tuple[argparse.ArgumentParser, Mapping[str, argparse.ArgumentParser]]:
    """The parser and its sub-command parsers by name."""
    prog = SCRIPT if Path(sys.argv[0]).name == SCRIPT else "python -m bench"
    parser = _Parser(
        prog=prog,
        description="forensic-robustness bench: " + running.SUMMARY,
        epilog=f"'{SCRIPT}' is the same program as 'python -m bench'. Exit status: 0 done, 1 failed cells or a "
        "regression, 2 bad input (one line on stderr, nothing written), 3 a trust flag with --strict, 130 "
        "interrupted. Documentation: README.md and docs/usage.md.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    running.add_parsers(sub)
    listing.add_parser(sub)
    results.add_parsers(sub)
    return parser, sub.choices


def _unrecognized(extras: list[str], command: argparse.ArgumentParser | None) -> str:
    """The tail of the message for arguments no parser took: the closest option of the sub-command."""
    options = list(command._option_string_actions) if command is not None else []  # argparse keeps no public list
    first = next((e.split("=")[0] for e in extras if e.startswith("-")), None)
    return did_you_mean(first, options) if first else ""


def main(argv: list[str] | None = None) -> int:
    """Entry point (``python -m bench`` and the ``forensic-bench`` script); returns the exit status."""
    try:
        parser, commands = _parser()
        args, extras = parser.parse_known_args(argv)
        if extras:  # what parse_args refuses, with a suggestion
            unknown = " ".join(extras)
            raise BenchError(
                f"{parser.prog}: unrecognized arguments: {unknown}{_unrecognized(extras, commands.get(args.command))}"
            )
        handler = args.handler
        return int(handler(args))
    except BenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as a Unix tool does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as err:  # the file system failed under a command (after its input was checked)
        print(f"error: {err.filename or 'a file'}: {err.strerror or err}", file=sys.stderr)
        return 1
