"""ART FastGradientMethod (FGSM)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.attacks import AttackInfo, register_attack
from bench.attacks.art._base import BATCH_SIZE, ArtAttack
from bench.attacks.base import FixedEpsilonAttack


@register_attack(
    "art.fgsm",
    info=AttackInfo(
        "ART FastGradientMethod (FGSM), Linf, one signed-gradient step of size eps",
        reference="Goodfellow, Shlens & Szegedy, ICLR 2015",
        algorithm="fgsm",
    ),
)
@dataclass(frozen=True, kw_only=True)
class ArtFGSM(ArtAttack, FixedEpsilonAttack):
    """FGSM through ART: Linf, no random start."""

    def run(self, handle: Any, x: np.ndarray, y: np.ndarray, eps: float) -> np.ndarray:
        from art.attacks.evasion import FastGradientMethod

        attack = FastGradientMethod(handle, norm=np.inf, eps=eps, eps_step=eps, batch_size=BATCH_SIZE)
        return np.asarray(attack.generate(x=x, y=y))
