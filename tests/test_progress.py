"""The progress display of ``python -m bench run``: plain lines off a terminal, a live status line on one."""

from __future__ import annotations

import io
import re
import sys
import threading

import pytest

from bench.cli import progress
from bench.cli.progress import Display, describe, eta_seconds, format_duration

STATS = {
    "models": 3,
    "models_trained": 1,
    "models_cached": 1,
    "models_failed": 0,
    "cells": 72,
    "cells_computed": 11,
    "cells_cached": 5,
    "cells_failed": 1,
}


class Clock:
    """A hand-moved clock for progress._now."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(progress, "_now", fake)
    return fake


@pytest.fixture
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    """Live consoles on a StringIO take their width from COLUMNS."""
    monkeypatch.setenv("COLUMNS", "120")


def plain(text: str) -> str:
    """Without the terminal's control sequences."""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


def test_plain_mode_prints_step_and_warning_lines(clock: Clock) -> None:
    out = io.StringIO()
    with Display(stream=out) as display:  # a StringIO is no terminal: plain lines
        clock.t += 12.34
        display.line("training bayar on median3")
        display.warn("warning: [odd] thing")
    assert out.getvalue() == "[   12.3s] training bayar on median3\nwarning: [odd] thing\n"
    assert "\x1b" not in out.getvalue()


def test_quiet_hides_step_lines_not_warnings() -> None:
    out = io.StringIO()
    with Display(quiet=True, live=True, stream=out) as display:  # quiet: no live line either
        display.line("step")
        display.update(STATS)
        display.warn("careful")
    assert out.getvalue() == "careful\n"


def test_update_prints_nothing_in_plain_mode() -> None:
    out = io.StringIO()
    with Display(live=False, stream=out) as display:
        display.update(STATS)
        display.update({**STATS, "cells_computed": 12})
    assert out.getvalue() == ""


def test_live_mode_renders_counts_and_estimate(clock: Clock, wide: None) -> None:
    out = io.StringIO()
    with Display(live=True, stream=out) as display:
        display.update({**STATS, "cells_computed": 0, "cells_failed": 0})  # the estimate's clock starts
        assert "estimating" in display.status()
        clock.t += 60.0
        display.line("cell 17")
        display.update(STATS)  # 12 cells computed or failed in 60 s; 55 left
        assert display.status() == "models 2/3 · cells 17/72 · 1 failed · 1:00 elapsed · about 4:35 left"
    text = plain(out.getvalue())
    assert "[   60.0s] cell 17\n" in text
    assert "cells 17/72" in text
    assert "1 failed" in text
    assert "about 4:35 left" in text
    assert "models 2/3 · cells 17/72 · 1 failed · 1:00 elapsed · done" in text  # the final state stays
    assert out.getvalue().endswith("\x1b[?25h")  # the cursor is back


def test_live_mode_prints_lines_as_they_are(wide: None) -> None:
    out = io.StringIO()
    with Display(live=True, stream=out) as display:
        display.warn("warning: [bold]not markup[/bold] 123")
    assert "warning: [bold]not markup[/bold] 123\n" in plain(out.getvalue())


def test_estimate_counts_down_between_updates(clock: Clock) -> None:
    display = Display(live=True, stream=io.StringIO())  # never entered: nothing drawn, the status still kept
    display.update({**STATS, "cells_computed": 0, "cells_cached": 0, "cells_failed": 0})
    clock.t += 10.0
    display.update({**STATS, "cells_computed": 10, "cells_cached": 0, "cells_failed": 0})  # 1 s a cell, 62 left
    assert display.status().endswith("about 1:02 left")
    clock.t += 2.0
    assert display.status().endswith("about 1:00 left")
    clock.t += 600.0
    assert display.status().endswith("about 0:00 left")


def test_keyboard_interrupt_stops_the_live_display(wide: None) -> None:
    out = io.StringIO()
    display = Display(live=True, stream=out)
    with pytest.raises(KeyboardInterrupt), display:
        live = display._live
        assert live is not None and live.is_started
        display.update(STATS)
        raise KeyboardInterrupt
    assert live is not None
    assert not live.is_started
    assert "cells 17/72 · 1 failed · 0:00 elapsed · interrupted" in plain(out.getvalue())
    assert out.getvalue().endswith("\x1b[?25h")  # the cursor is back


def test_live_display_restores_stderr(wide: None, monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", out)
    with Display(live=True) as display:
        assert sys.stderr is not out  # stray prints go above the live line
        print("stray", file=sys.stderr)
        display.line("step")
    assert sys.stderr is out
    text = plain(out.getvalue())
    assert "stray\n" in text
    assert "step\n" in text


def test_lines_from_threads(wide: None) -> None:
    out = io.StringIO()
    with Display(live=True, stream=out) as display:

        def work(n: int) -> None:
            for i in range(20):
                display.line(f"thread {n} step {i}")
                display.update({**STATS, "cells_computed": i})

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    text = plain(out.getvalue())
    assert all(f"thread {n} step {i}\n" in text for n in range(4) for i in range(20))


@pytest.mark.parametrize(
    ("elapsed", "computed", "remaining", "expected"),
    [
        (60.0, 12, 55, 275.0),
        (10.0, 0, 5, None),  # nothing computed yet: no estimate
        (10.0, 0, 0, 0.0),  # nothing left (all cached)
        (0.0, 3, 9, 0.0),
        (30.0, 3, 1, 10.0),
    ],
)
def test_eta_seconds(elapsed: float, computed: int, remaining: int, expected: float | None) -> None:
    assert eta_seconds(elapsed, computed, remaining) == expected


def test_format_duration() -> None:
    assert format_duration(0) == "0:00"
    assert format_duration(252.4) == "4:12"
    assert format_duration(570) == "9:30"
    assert format_duration(3852) == "1:04:12"
    assert format_duration(-3) == "0:00"


def test_describe() -> None:
    assert describe(None, 3, None) == ["starting", "0:03 elapsed"]
    assert " · ".join(describe(STATS, 252, 570)) == (
        "models 2/3 · cells 17/72 · 1 failed · 4:12 elapsed · about 9:30 left"
    )
    assert describe(STATS, 252, None)[-1] == "estimating"
    assert describe({}, 1, None) == ["models 0/0", "cells 0/0", "0 failed", "0:01 elapsed", "estimating"]
    assert describe(STATS, 252, 570, state="interrupted")[-1] == "interrupted"


def test_live_defaults_to_the_stream_being_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setenv("TERM", "xterm")
    assert Display(stream=Tty()).live
    assert not Display(stream=io.StringIO()).live
    assert not Display(stream=Tty(), quiet=True).live
    monkeypatch.setenv("TERM", "dumb")
    assert not Display(stream=Tty()).live
