"""User-facing errors: the CLI prints them as one line and exits with status 2."""

from __future__ import annotations


class BenchError(Exception):
    """Bad input from the user (matrix file, CLI option, image folder).

    The message is one line that names what was wrong and what is allowed; the CLI prints it
    without a traceback.
    """
