"""Forensic tasks: how each class of patch is made from a pristine photograph.

A task entry returns a :class:`Task` whose ``variants(image)`` gives one whole-image version per
class (class 0 is the pristine photograph itself). The dataset builder cuts every version at
the same locations, so each location yields one patch per class with identical content.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from bench.registry import Registry


@dataclass(frozen=True)
class TaskInfo:
    """Frozen description of a task entry."""

    description: str
    classes: tuple[str, ...]
    channels: int = 1


@dataclass(frozen=True)
class Task:
    """A built task: class names, channel count and the whole-image manipulations."""

    classes: tuple[str, ...]
    channels: int
    manipulations: tuple[Callable[[np.ndarray], np.ndarray], ...]

    def variants(self, image: np.ndarray) -> list[np.ndarray]:
        """The pristine image followed by one manipulated version per further class (uint8)."""
        return [image, *(m(image) for m in self.manipulations)]


TASKS: Registry[Task] = Registry("task", modules=(), group="forensic_bench.tasks")
register_task = TASKS.register
create_task = TASKS.create
list_tasks = TASKS.names


def _median(size: int) -> Callable[[np.ndarray], np.ndarray]:
    from scipy.ndimage import median_filter

    return lambda image: median_filter(image, size=size, mode="reflect")


@register_task(
    "median3",
    info=TaskInfo(
        "pristine vs 3x3 median-filtered grayscale patches (median filter applied to the whole photo)",
        classes=("pristine", "median3"),
    ),
)
def median3() -> Task:
    """Median-filtering detection (Kirchner & Fridrich 2010; Chen et al. 2015)."""
    return Task(("pristine", "median3"), 1, (_median(3),))
