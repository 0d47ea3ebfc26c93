"""Registry of defences.

A training-time defence entry is one decorated factory returning a :class:`Defense`, whose
``loss(model, x, y)`` is the objective the trainer minimises on each batch. The undefended
detector uses plain cross entropy (``none``).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench.registry import Registry

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass(frozen=True)
class DefenseInfo:
    """Frozen description of a defence entry."""

    description: str
    reference: str = ""


class Defense(abc.ABC):
    """A training-time defence: the per-batch training objective."""

    @abc.abstractmethod
    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Scalar loss on a batch of images ``x`` in [0, 1] with labels ``y``."""


DEFENSES: Registry[Defense] = Registry(
    "defense", modules="defenses", group="forensic_bench.defenses"
)
register_defense = DEFENSES.register
create_defense = DEFENSES.create
list_defenses = DEFENSES.names
