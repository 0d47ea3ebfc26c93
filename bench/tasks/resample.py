"""Resampling detection (bilinear up- or down-scaling)."""

from __future__ import annotations

from typing import Annotated

from bench.core.errors import BenchError
from bench.core.registry import greater_than
from bench.tasks import Task, TaskInfo, binary, register_task
from bench.tasks._manipulations import rescale


@register_task(
    "resample",
    info=TaskInfo(
        "pristine vs bilinearly rescaled grayscale patches (scale > 1: up-scaled then cropped; < 1: down-scaled)",
        ("pristine", "resample"),
        reference="Popescu & Farid, IEEE TSP 2005; Bayar & Stamm, IEEE TIFS 2018",
    ),
)
def resample(*, scale: Annotated[float, greater_than(0.0)] = 1.5) -> Task:
    """Resampling detection (use resample[scale=0.8] for down-scaling)."""
    if scale == 1.0:
        raise BenchError("resample: scale=1.0 is no manipulation; use a scale != 1")
    return binary("resample", rescale(scale))
