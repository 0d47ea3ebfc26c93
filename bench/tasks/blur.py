"""Gaussian blur detection."""

from __future__ import annotations

from typing import Annotated

from bench.core.registry import greater_than
from bench.tasks import Task, TaskInfo, binary, register_task
from bench.tasks._manipulations import gaussian_blur


@register_task(
    "blur",
    info=TaskInfo(
        "pristine vs Gaussian-blurred grayscale patches",
        ("pristine", "blur"),
        reference="Bayar & Stamm, IEEE TIFS 2018",
    ),
)
def blur(*, sigma: Annotated[float, greater_than(0.0)] = 1.0) -> Task:
    """Gaussian blur detection."""
    return binary("blur", gaussian_blur(sigma))
