"""An instant attack, registered only in the tests: it returns its input unchanged, in no time.

With it, a matrix of thousands of cells runs in seconds, so what the runner spends around each
cell (serving, storing, the tables, the progress) can be measured and its growth with the number
of cells checked (tests/test_bookkeeping.py). ``k`` only tells cells apart: ``test-instant[k=0]``,
``test-instant[k=1]``, ... are distinct attacks with distinct keys.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from bench.attacks.base import FixedEpsilonAttack

if TYPE_CHECKING:
    import torch
    from torch import nn

NAME = "test-instant"


@dataclass(frozen=True, kw_only=True)
class InstantAttack(FixedEpsilonAttack):
    """Returns the clean images: a control perturbation of size zero."""

    library = "test"
    threat = "control"
    k: int = 0

    def prepare(
        self, model: nn.Module, input_shape: tuple[int, ...], num_classes: int, *, device: torch.device | None = None
    ) -> Any:
        return None

    def run(self, handle: Any, x: np.ndarray, y: np.ndarray, eps: float) -> np.ndarray:
        return x.copy()


@contextmanager
def registered() -> Iterator[str]:
    """Register ``test-instant`` in the attack registry for the duration of the block."""
    from bench.attacks import ATTACKS, AttackInfo

    ATTACKS.register(NAME, info=AttackInfo("instant control attack (tests only)", reference="-"))(InstantAttack)
    try:
        yield NAME
    finally:
        ATTACKS.unregister(NAME)


DETECTOR = "test-instant-detector"


def instant_detector(*, in_channels: int = 1, num_classes: int = 2) -> nn.Module:
    """A detector that costs nothing to run: the patch's mean intensity through a linear layer."""
    from torch import nn

    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(in_channels, num_classes))


@contextmanager
def detector_registered() -> Iterator[str]:
    """Register ``test-instant-detector`` in the detector registry for the duration of the block."""
    from detectors import DETECTORS, DetectorInfo

    DETECTORS.register(DETECTOR, info=DetectorInfo("instant test detector (tests only)", reference="-"))(
        instant_detector
    )
    try:
        yield DETECTOR
    finally:
        DETECTORS.unregister(DETECTOR)
