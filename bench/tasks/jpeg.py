"""JPEG compression detection."""

from __future__ import annotations

from typing import Annotated

from bench.core.registry import at_least, at_most
from bench.tasks import Task, TaskInfo, binary, register_task
from bench.tasks._manipulations import jpeg


@register_task(
    "jpeg",
    info=TaskInfo(
        "never-compressed vs once JPEG-compressed (PIL) grayscale patches; note: the built-in hubble_deep_field, "
        "retina and rocket photographs were JPEG files to begin with",
        ("pristine", "jpeg"),
        reference="Barni et al., 'Aligned and non-aligned double JPEG detection using CNNs', JVCIR 2017",
    ),
)
def jpeg_task(*, quality: Annotated[int, at_least(1), at_most(100)] = 75) -> Task:
    """JPEG compression detection."""
    return binary("jpeg", jpeg(quality))
