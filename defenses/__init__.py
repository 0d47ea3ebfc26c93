"""Registry of defences.

Two kinds, told apart by the entry's :class:`DefenseInfo` (registry metadata: nothing is built to
find out). A *training-time* defence entry returns a :class:`Defense`, whose ``loss(model, x, y)``
is the objective the trainer minimises on each batch (``none``: plain cross entropy). An *input
transform* entry returns an :class:`~defenses._transform.InputTransform` that wraps the
undefended detector at attack time; its info names the gradients the attacks are run with
(the naive one first) and the one an adaptive attacker would pick.

One file per entry; shared code lives in modules starting with an underscore (``_adversary.py``:
the on-the-fly attack of adversarial training; ``_transform.py``: the transform wrapper).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from bench.core.registry import Registry, Spec

if TYPE_CHECKING:
    import torch
    from torch import nn

ZHAO2018 = (
    "Zhao, Yang, Ni, Zhao & Wu, 'Security consideration for deep learning-based image forensics', "
    "IEICE Trans. Inf. & Syst. E101-D(12), 2018"
)
TRANSFORM_GRADIENTS = ("oblivious", "exact", "bpda")  # how input transforms are attacked unless they say otherwise


@dataclass(frozen=True)
class DefenseInfo:
    """Frozen description of a defence entry.

    ``kind``: ``training`` (a training objective) or ``transform`` (applied to every input at
    attack time). ``gradients``: the attacker's gradients each attack is run with on this defence,
    the naive one first; ``adaptive``: the one an adaptive attacker would use.
    """

    description: str
    reference: str = ""
    kind: Literal["training", "transform"] = "training"
    gradients: tuple[str, ...] = ("exact",)
    adaptive: str = "exact"


class Defense(abc.ABC):
    """A training-time defence: the per-batch training objective."""

    @abc.abstractmethod
    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Scalar loss on a batch of images ``x`` in [0, 1] with labels ``y``."""


DEFENSES: Registry[Any] = Registry("defense", modules="defenses", group="forensic_bench.defenses")
register_defense = DEFENSES.register
create_defense = DEFENSES.create
list_defenses = DEFENSES.names


def defense_info(defense: Spec) -> DefenseInfo:
    """The registry metadata of a defence."""
    info = DEFENSES.entry(defense.name).info
    if not isinstance(info, DefenseInfo):
        raise TypeError(f"defence {defense.name!r} is registered without a DefenseInfo")
    return info


def is_input_transform(defense: Spec) -> bool:
    """Whether a defence acts at inference time (wrapping an undefended detector)."""
    return defense_info(defense).kind == "transform"


def attack_gradients(defense: Spec) -> tuple[str, ...]:
    """The gradients each attack is run with on this defence (the naive one first)."""
    return defense_info(defense).gradients
