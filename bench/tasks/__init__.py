"""Registry of forensic tasks: how each class of patch is made from a pristine photograph.

A task entry returns a :class:`Task`. Manipulation tasks give, for every photograph, one
whole-image version per class (class 0 is the pristine photograph itself); the dataset builder
cuts every version at the same locations, so a location yields one patch per class with the
same scene. Manipulations are applied to the whole photograph before patches are cut, and every
version is an 8-bit image, as a forensic analyst would receive it.

One file per task family (``median.py``: ``median3`` and ``median5``); the manipulations they
share are in ``_manipulations.py``. A new task is one new file in this package.

``camera-sim`` on a folder whose sub-folders are camera models (the Dresden layout) switches to
labelled photographs: each photograph gives patches of its own class only, and the split is
stratified by class.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from bench.core.registry import Registry

Manipulation = Callable[[np.ndarray, np.random.Generator], np.ndarray]


@dataclass(frozen=True)
class TaskInfo:
    """Frozen description of a task entry."""

    description: str
    classes: tuple[str, ...]
    channels: int = 1
    reference: str = ""


@dataclass(frozen=True)
class Task:
    """A built task.

    Either ``manipulations`` (one per class after the pristine class 0; each maps a uint8 image
    and a seeded generator to a uint8 image) or ``photo_labels`` (photo name -> class, one
    example per photograph) is used.
    """

    classes: tuple[str, ...]
    channels: int
    manipulations: tuple[Manipulation, ...] = ()
    photo_labels: Mapping[str, int] | None = None
    colour_only: bool = False
    pristine_class: bool = True  # False: every class is a manipulation of the photograph (camera-sim)

    def examples(self, photo: str, image: np.ndarray, rng: np.random.Generator) -> list[tuple[int, np.ndarray]]:
        """(label, whole image) pairs that this photograph contributes."""
        if self.photo_labels is not None:
            return [(self.photo_labels[photo], image)]
        versions = [m(image, rng) for m in self.manipulations]
        if self.pristine_class:
            versions.insert(0, image)
        return list(enumerate(versions))


TASKS: Registry[Task] = Registry("task", modules="bench.tasks", group="forensic_bench.tasks", context=("photos",))
register_task = TASKS.register
create_task = TASKS.create
list_tasks = TASKS.names


def binary(name: str, manipulation: Manipulation) -> Task:
    """A pristine-vs-manipulated task on grayscale photographs."""
    return Task(("pristine", name), 1, (manipulation,))
