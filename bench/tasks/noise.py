"""Additive Gaussian noise detection."""

from __future__ import annotations

from typing import Annotated

from bench.core.registry import greater_than
from bench.tasks import Task, TaskInfo, binary, register_task
from bench.tasks._manipulations import gaussian_noise


@register_task(
    "noise",
    info=TaskInfo(
        "pristine vs additive-Gaussian-noise grayscale patches (sigma in grey levels)",
        ("pristine", "noise"),
        reference="Bayar & Stamm, IEEE TIFS 2018",
    ),
)
def noise(*, sigma: Annotated[float, greater_than(0.0)] = 2.0) -> Task:
    """White Gaussian noise detection; sigma 2 grey levels = 2/255."""
    return binary("noise", gaussian_noise(sigma))
