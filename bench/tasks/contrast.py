"""Contrast enhancement detection: gamma correction and histogram equalisation."""

from __future__ import annotations

from typing import Annotated

from bench.core.registry import greater_than
from bench.tasks import Task, TaskInfo, binary, register_task
from bench.tasks._manipulations import gamma_correction, histogram_equalisation

REFERENCE = "Stamm & Liu, IEEE TIFS 2010"


@register_task(
    "gamma",
    info=TaskInfo(
        "pristine vs gamma-corrected grayscale patches (contrast enhancement)",
        ("pristine", "gamma"),
        reference=REFERENCE,
    ),
)
def gamma(*, gamma: Annotated[float, greater_than(0.0)] = 0.7) -> Task:
    """Contrast enhancement detection: gamma correction."""
    return binary("gamma", gamma_correction(gamma))


@register_task(
    "histeq",
    info=TaskInfo(
        "pristine vs histogram-equalised grayscale patches (contrast enhancement)",
        ("pristine", "histeq"),
        reference=REFERENCE,
    ),
)
def histeq() -> Task:
    """Contrast enhancement detection: global histogram equalisation."""
    return binary("histeq", histogram_equalisation())
