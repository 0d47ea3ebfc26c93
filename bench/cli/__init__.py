"""Command line: ``python -m bench run|zoo|costs|list|figures|tables|report|check``.

``running.py`` runs (run, zoo, costs), ``results.py`` processes finished results folders (figures,
tables, report, check), ``listing.py`` lists the registries. Bad input (matrix file, options,
image folder) is reported as one line on stderr with exit status 2 and nothing written; an
interrupted run keeps every finished cell and exits 130. ``run --strict`` exits 3 when a trust flag
reporting a failure of the evaluation (docs/flags.md, Severity) is raised, ``--strict=all`` when
any is, after writing every output (failed cells, status 1, take precedence). Heavy libraries are imported only once a command runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn

from bench.cli import listing, results, running
from bench.core.errors import BenchError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2 (argparse's default prints usage too)
        raise BenchError(f"{self.prog}: {message}")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m bench", description="forensic-robustness bench: " + running.SUMMARY)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    running.add_parsers(sub)
    listing.add_parser(sub)
    results.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    try:
        args = _parser().parse_args(argv)
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
