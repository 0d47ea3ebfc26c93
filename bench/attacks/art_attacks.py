"""Adapters over the Adversarial Robustness Toolbox (ART)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import numpy as np

from bench.attacks import AttackInfo, register_attack
from bench.attacks.base import Attack
from bench.registry import at_least, greater_than

if TYPE_CHECKING:
    from torch import nn

BATCH_SIZE = 256


class ArtAttack(Attack):
    """Base of ART adapters: wraps the detector as an ART ``PyTorchClassifier``."""

    library = "art"

    def prepare(self, model: nn.Module, input_shape: tuple[int, ...], num_classes: int) -> Any:
        from art.estimators.classification import PyTorchClassifier
        from torch import nn

        return PyTorchClassifier(
            model=model,
            loss=nn.CrossEntropyLoss(),
            input_shape=input_shape,
            nb_classes=num_classes,
            clip_values=(0.0, 1.0),
            device_type="cpu",
        )


class ArtFGSM(ArtAttack):
    """ART FastGradientMethod, Linf, no random start."""

    def run(self, handle: Any, x: np.ndarray, y: np.ndarray, eps: float) -> np.ndarray:
        from art.attacks.evasion import FastGradientMethod

        attack = FastGradientMethod(handle, norm=np.inf, eps=eps, eps_step=eps, batch_size=BATCH_SIZE)
        return attack.generate(x=x, y=y)


class ArtPGD(ArtAttack):
    """ART ProjectedGradientDescent, Linf; step size relative to epsilon."""

    def run(self, handle: Any, x: np.ndarray, y: np.ndarray, eps: float) -> np.ndarray:
        from art.attacks.evasion import ProjectedGradientDescent

        attack = ProjectedGradientDescent(
            handle,
            norm=np.inf,
            eps=eps,
            eps_step=self.params["rel_stepsize"] * eps,
            max_iter=self.params["steps"],
            num_random_init=int(self.params["random_start"]),
            batch_size=BATCH_SIZE,
            verbose=False,
        )
        return attack.generate(x=x, y=y)


@register_attack(
    "art.fgsm",
    info=AttackInfo(
        "ART FastGradientMethod (FGSM), Linf, one signed-gradient step of size eps",
        library="art",
        reference="Goodfellow, Shlens & Szegedy, ICLR 2015",
    ),
)
def art_fgsm() -> Attack:
    """FGSM through ART."""
    return ArtFGSM()


@register_attack(
    "art.pgd",
    info=AttackInfo(
        "ART ProjectedGradientDescent, Linf, random start, step = rel_stepsize * eps",
        library="art",
        reference="Madry et al., ICLR 2018",
    ),
)
def art_pgd(
    *,
    random_start: bool = True,
    rel_stepsize: Annotated[float, greater_than(0.0)] = 0.25,
    steps: Annotated[int, at_least(1)] = 10,
) -> Attack:
    """Linf PGD through ART."""
    return ArtPGD(random_start=random_start, rel_stepsize=rel_stepsize, steps=steps)
