"""User-facing errors: the CLI prints them as one line and exits with status 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class BenchError(Exception):
    """Bad input from the user (matrix file, CLI option, image folder).

    The message is one line that names what was wrong and what is allowed; the CLI prints it
    without a traceback.
    """


def did_you_mean(name: str, allowed: Iterable[str]) -> str:
    """``"; did you mean 'X'?"`` for the allowed name closest to ``name`` (difflib), or ``""`` when
    none is close: the tail of every message that refuses a name and lists the allowed ones."""
    by_case = {a.lower(): a for a in reversed(list(allowed))}  # 'SRM' finds 'srm'; the first of a tie wins
    close = difflib.get_close_matches(name.lower(), by_case, n=1)
    return f"; did you mean {by_case[close[0]]!r}?" if close else ""
