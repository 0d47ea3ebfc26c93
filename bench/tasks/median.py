"""Median filtering detection, 3x3 and 5x5."""

from __future__ import annotations

from bench.tasks import Task, TaskInfo, binary, register_task
from bench.tasks._manipulations import median

REFERENCE = (
    "Kirchner & Fridrich, SPIE 2010; Chen, Ni, Huang & Wang, 'Median filtering forensics based on CNNs', IEEE SPL 2015"
)


@register_task(
    "median3",
    info=TaskInfo("pristine vs 3x3 median-filtered grayscale patches", ("pristine", "median3"), reference=REFERENCE),
)
def median3() -> Task:
    """3x3 median filtering detection."""
    return binary("median3", median(3))


@register_task(
    "median5",
    info=TaskInfo("pristine vs 5x5 median-filtered grayscale patches", ("pristine", "median5"), reference=REFERENCE),
)
def median5() -> Task:
    """5x5 median filtering detection."""
    return binary("median5", median(5))
