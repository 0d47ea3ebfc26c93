"""Registry of attacks: adapters over ART and Foolbox that share one result type.

An attack entry is one decorated factory returning an :class:`~bench.attacks.base.Attack`.
Epsilons are passed in [0, 1] units; matrix files write them in 8-bit units (eps/255).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench.registry import Registry

if TYPE_CHECKING:
    from bench.attacks.base import Attack


@dataclass(frozen=True)
class AttackInfo:
    """Frozen description of an attack entry."""

    description: str
    library: str
    norm: str = "linf"
    reference: str = ""

    @property
    def package(self) -> str:
        """Distribution whose version is part of the cell cache key."""
        return {"art": "adversarial-robustness-toolbox"}.get(self.library, self.library)


ATTACKS: Registry[Attack] = Registry(
    "attack", modules="bench.attacks", group="forensic_bench.attacks"
)
register_attack = ATTACKS.register
create_attack = ATTACKS.create
list_attacks = ATTACKS.names
