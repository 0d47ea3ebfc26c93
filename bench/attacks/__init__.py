"""Registry of attacks: adapters over ART and Foolbox that share one result type.

An attack entry is one decorated class deriving from
:class:`~bench.attacks.base.FixedEpsilonAttack` or :class:`~bench.attacks.base.MinimumNormAttack`,
one file per attack under ``art/`` and ``foolbox/``. Epsilons are passed in [0, 1] units; matrix
files write them in 8-bit units (eps/255).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench.core.registry import Registry

if TYPE_CHECKING:
    from bench.attacks.base import Attack


@dataclass(frozen=True)
class AttackInfo:
    """Frozen description of an attack entry (its library, norm and threat model are class attributes).

    ``algorithm`` names the published algorithm the entry implements (``pgd``, ``deepfool``,
    ``cw``, ...) and ``matched`` the parameters that must be equal before two libraries'
    implementations of it are compared: an ART and a Foolbox row of one algorithm, norm and
    matched values ought to agree within sampling error (the ``libraries_disagree`` flag,
    docs/flags.md). Metadata, like the description: in no cache key.
    """

    description: str
    reference: str = ""
    algorithm: str = ""
    matched: tuple[str, ...] = ()


ATTACKS: Registry[Attack] = Registry("attack", modules="bench.attacks", group="forensic_bench.attacks")
register_attack = ATTACKS.register
create_attack = ATTACKS.create
list_attacks = ATTACKS.names


def attack_class(name: str) -> type[Attack]:
    """The class registered under ``name`` (its ``library``, ``norm``, ``threat``, ``minimum_norm``)."""
    factory = ATTACKS.entry(name).factory
    if not isinstance(factory, type):
        raise TypeError(f"attack {name!r} is registered as a function; attacks are classes")
    return factory
