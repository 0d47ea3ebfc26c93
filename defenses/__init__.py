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


def deployed(defense: Spec, gradient: str, model: nn.Module, seed: int) -> tuple[nn.Module, nn.Module | None]:
    """What an attacker with ``gradient`` faces on ``defense``: the deployed model judged, and the
    surrogate the adversarial images are crafted on (None: the deployed model itself).

    A training-time defence is its trained model. An input transform wraps the undefended model
    with the attacker's gradient (its predictions always go through the transform); the oblivious
    attacker crafts on the bare model.
    """
    info = defense_info(defense)
    if gradient not in info.gradients:
        raise ValueError(f"{defense}: gradient {gradient!r} is not one of {', '.join(info.gradients)}")
    if info.kind == "training":
        return model, None
    wrapped: nn.Module = create_defense(defense).wrap(model, gradient, seed)
    return wrapped, (model if gradient == "oblivious" else None)
