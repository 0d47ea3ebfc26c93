"""Registry of forensic detectors.

A detector entry is one decorated factory returning a ``torch.nn.Module`` that maps images in
[0, 1] of shape (N, C, H, W) to class logits. ``in_channels`` and ``num_classes`` come from
the task (context arguments); every other keyword-only argument is a parameter that shows in
the canonical name, e.g. ``bayar[filters=3,scale=0.25,truncate=3.0]``.

Layers that must satisfy a constraint after every optimiser step (Bayar's constrained
convolution) expose ``constrain_()``; the trainer calls :func:`apply_constraints`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench.core.registry import Registry

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class DetectorInfo:
    """Frozen description of a detector entry."""

    description: str
    reference: str
    input_size: int = 64
    channels: tuple[int, ...] = (1, 3)
    parameters: int = 0  # trainable parameters at the default settings, 1 channel, 2 classes (checked by a test)


DETECTORS: Registry[Any] = Registry(
    "detector",
    modules="detectors",
    group="forensic_bench.detectors",
    context=("in_channels", "num_classes"),
)
register_detector = DETECTORS.register
create_detector = DETECTORS.create
list_detectors = DETECTORS.names


def apply_constraints(model: nn.Module) -> None:
    """Project every constrained layer back onto its constraint set (after an optimiser step)."""
    for module in model.modules():
        constrain = getattr(module, "constrain_", None)
        if callable(constrain):
            constrain()
