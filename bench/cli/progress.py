"""The progress display of ``python -m bench run``: step lines, warnings and, on a terminal, a live status line.

When stderr is not a terminal (CI logs, a file) it prints what the CLI always printed: one line per
step, ``[  12.3s] message``, and warning lines as they are. On a terminal it also keeps a live line at
the bottom, redrawn a few times a second (rich), with the models and cells done out of their totals,
the failures so far, the elapsed time and an estimate of the time left; the step and warning lines
are printed above it, so nothing is lost.

rich is imported only when the live display is used: the plain mode costs nothing to import.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Self, TextIO

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

SEP = " · "
BAR_WIDTH = 24
REFRESH_PER_SECOND = 4

_now = time.perf_counter  # the clock of the step lines and the estimate (tests replace it)


def eta_seconds(elapsed: float, computed: int, remaining: int) -> float | None:
    """Seconds left, from ``computed`` cells computed (or failed) in ``elapsed`` seconds; None: no estimate yet.

    Cached cells are served at once and are not counted in ``computed``: only the time cells take to
    compute predicts the time the ``remaining`` ones will take.
    """
    if remaining <= 0:
        return 0.0
    if computed <= 0:
        return None
    return max(elapsed, 0.0) / computed * remaining


def format_duration(seconds: float) -> str:
    """``4:12``, ``1:04:12``: whole seconds, rounded."""
    total = max(round(seconds), 0)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def counts(stats: Mapping[str, int]) -> tuple[int, int, int, int, int]:
    """(models done, models, cells done, cells, failures) of a runner's stats."""
    models_done = stats.get("models_trained", 0) + stats.get("models_cached", 0) + stats.get("models_failed", 0)
    cells_done = stats.get("cells_computed", 0) + stats.get("cells_cached", 0) + stats.get("cells_failed", 0)
    failed = stats.get("models_failed", 0) + stats.get("cells_failed", 0)
    return models_done, stats.get("models", 0), cells_done, stats.get("cells", 0), failed


def describe(stats: Mapping[str, int] | None, elapsed: float, left: float | None, *, state: str = "") -> list[str]:
    """The parts of the status line, e.g. ``models 2/3``, ``cells 17/72``, ``1 failed``, ``4:12 elapsed``,
    ``about 9:30 left``; ``state`` (``done``, ``interrupted``, ``stopped``) replaces the estimate when the run is over."""
    parts: list[str] = []
    if stats is None:
        parts.append("starting")
    else:
        models_done, models, cells_done, cells, failed = counts(stats)
        parts += [f"models {models_done}/{models}", f"cells {cells_done}/{cells}", f"{failed} failed"]
    parts.append(f"{format_duration(elapsed)} elapsed")
    if state:
        parts.append(state)
    elif stats is not None:
        parts.append("estimating" if left is None else f"about {format_duration(left)} left")
    return parts


class Display:
    """Step lines, warning lines and, on a terminal, a live status line; thread-safe.

    ``stream``: where everything goes (default ``sys.stderr``). ``live``: draw the live line (default:
    when ``stream`` is a terminal). ``quiet``: no step lines and no live line, only the warning lines.
    """

    def __init__(self, *, quiet: bool = False, live: bool | None = None, stream: TextIO | None = None) -> None:
        self.stream: TextIO = sys.stderr if stream is None else stream
        if live is None:
            live = _is_terminal(self.stream)
        self.quiet = quiet
        self.live = live and not quiet
        self._start = _now()
        self._lock = threading.Lock()
        # The status, replaced whole (never mutated) so that the refresh thread reads it without the lock:
        # taking self._lock there could deadlock against line(), which holds it while rich holds its own.
        self._stats: dict[str, int] | None = None
        self._eta: tuple[float, float] | None = None  # (seconds left, when estimated)
        self._clock: tuple[float, int] | None = None  # (time of the first update, cells computed by then)
        self._state = ""
        self.outcome = "done"  # the live line's last word when the block ends without an exception
        self._stopped_at: float | None = None
        self._refreshed = -float("inf")  # when update() last redrew the live line
        self._console: Console | None = None
        self._live: Live | None = None
        if self.live:
            from rich.console import Console

            self._console = Console(file=self.stream, force_terminal=True, highlight=False, emoji=False)

    def __enter__(self) -> Self:
        if self._console is not None and self._live is None:
            from rich.live import Live

            on_stderr = self.stream is sys.stderr
            self._live = Live(
                console=self._console,
                get_renderable=self._render,
                refresh_per_second=REFRESH_PER_SECOND,
                transient=False,
                # stray prints of the libraries go above the live line instead of through it
                redirect_stderr=on_stderr,
                redirect_stdout=on_stderr and _is_terminal(sys.stdout),
            )
            self._live.start(refresh=True)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the live line, leaving its final state on screen; the exception, if any, goes on."""
        live, self._live = self._live, None
        if live is None:
            return
        self._stopped_at = _now()
        if exc_type is None:
            self._state = self.outcome
        elif issubclass(exc_type, KeyboardInterrupt):
            self._state = "interrupted"
        else:
            self._state = "stopped"
        live.stop()

    def elapsed(self) -> float:
        """Seconds since the Display was created (until its live line stopped)."""
        end = self._stopped_at if self._stopped_at is not None else _now()
        return end - self._start

    def line(self, message: str) -> None:
        """A step line, ``[  12.3s] message``; hidden with quiet."""
        if self.quiet:
            return
        self._emit(f"[{_now() - self._start:7.1f}s] {message}")

    def warn(self, message: str) -> None:
        """A warning line, printed as it is, even with quiet."""
        self._emit(message)

    def update(self, stats: Mapping[str, int]) -> None:
        """The runner's counts (``models``, ``models_trained|cached|failed``, ``cells``,
        ``cells_computed|cached|failed``); only the live line shows them."""
        if self._console is None:
            return
        now = _now()
        snapshot = dict(stats)
        computed = snapshot.get("cells_computed", 0) + snapshot.get("cells_failed", 0)
        with self._lock:
            if self._clock is None:  # the estimate counts only the cells computed since the first update
                self._clock = (now, computed)
            since, computed_before = self._clock
            _, _, cells_done, cells, _ = counts(snapshot)
            left = eta_seconds(now - since, computed - computed_before, cells - cells_done)
            self._eta = None if left is None else (left, now)
            self._stats = snapshot
            live = self._live
            redraw = live is not None and now - self._refreshed >= 1 / REFRESH_PER_SECOND
            if redraw:
                self._refreshed = now
        if redraw and live is not None and live.is_started:  # at once, but no faster than the refresh thread
            live.refresh()

    def status(self) -> str:
        """The live line's text, e.g. ``models 2/3 · cells 17/72 · 1 failed · 4:12 elapsed · about 9:30 left``."""
        return SEP.join(self._parts())

    def _parts(self) -> list[str]:
        eta, stats = self._eta, self._stats
        left = None
        if eta is not None:  # counts down between updates
            seconds, at = eta
            left = max(seconds - (_now() - at), 0.0)
        return describe(stats, self.elapsed(), left, state=self._state)

    def _emit(self, text: str) -> None:
        with self._lock:
            if self._console is None:
                print(text, file=self.stream, flush=True)
            else:
                from rich.text import Text

                self._console.print(Text(text), soft_wrap=True)

    def _render(self) -> RenderableType:
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        parts = self._parts()
        text = Text()
        for i, part in enumerate(parts):
            if i:
                text.append(SEP, style="dim")
            style = ""
            if part.endswith(" failed") and not part.startswith("0 "):
                style = "bold red"
            elif part in ("interrupted", "stopped"):
                style = "yellow"
            text.append(part, style=style)
        text.no_wrap = True
        text.overflow = "ellipsis"
        stats = self._stats
        width = self._console.width if self._console is not None else 0
        if stats is None or not stats.get("cells") or text.cell_len + 1 + BAR_WIDTH > width:
            return text  # no bar where it would not fit on one line
        _, _, cells_done, cells, _ = counts(stats)
        grid = Table.grid(padding=(0, 1))
        grid.add_row(ProgressBar(total=cells, completed=cells_done, width=BAR_WIDTH), text)
        return grid


def _is_terminal(stream: TextIO) -> bool:
    """A terminal that can redraw a line (not TERM=dumb)."""
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
    return tty and os.environ.get("TERM", "") != "dumb"
