"""Adapters over Foolbox 3."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np

from bench.attacks import AttackInfo, register_attack
from bench.attacks.base import Attack
from bench.registry import at_least, greater_than

if TYPE_CHECKING:
    from torch import nn


class FoolboxAttack(Attack):
    """Base of Foolbox adapters: wraps the detector as a ``foolbox.PyTorchModel``."""

    library = "foolbox"

    def prepare(self, model: nn.Module, input_shape: tuple[int, ...], num_classes: int) -> Any:
        import foolbox

        return foolbox.PyTorchModel(model, bounds=(0.0, 1.0), device="cpu")

    def run(self, handle: Any, x: np.ndarray, y: np.ndarray, eps: float) -> np.ndarray:
        import torch

        _, clipped, _ = self.make()(handle, torch.from_numpy(x), torch.from_numpy(y), epsilons=eps)
        return clipped.detach().numpy()

    @abc.abstractmethod
    def make(self) -> Any:
        """The Foolbox attack object."""


class FoolboxFGSM(FoolboxAttack):
    """Foolbox LinfFastGradientAttack without random start."""

    def make(self) -> Any:
        import foolbox

        return foolbox.attacks.LinfFastGradientAttack(random_start=False)


class FoolboxPGD(FoolboxAttack):
    """Foolbox LinfProjectedGradientDescentAttack."""

    def make(self) -> Any:
        import foolbox

        return foolbox.attacks.LinfProjectedGradientDescentAttack(
            rel_stepsize=self.params["rel_stepsize"], steps=self.params["steps"], random_start=self.params["random_start"]
        )


@register_attack(
    "foolbox.fgsm",
    info=AttackInfo(
        "Foolbox LinfFastGradientAttack (FGSM), one signed-gradient step of size eps",
        library="foolbox",
        reference="Goodfellow, Shlens & Szegedy, ICLR 2015",
    ),
)
def foolbox_fgsm() -> Attack:
    """FGSM through Foolbox."""
    return FoolboxFGSM()


@register_attack(
    "foolbox.pgd",
    info=AttackInfo(
        "Foolbox LinfProjectedGradientDescentAttack, random start, step = rel_stepsize * eps",
        library="foolbox",
        reference="Madry et al., ICLR 2018",
    ),
)
def foolbox_pgd(
    *,
    random_start: bool = True,
    rel_stepsize: Annotated[float, greater_than(0.0)] = 0.25,
    steps: Annotated[int, at_least(1)] = 10,
) -> Attack:
    """Linf PGD through Foolbox."""
    return FoolboxPGD(random_start=random_start, rel_stepsize=rel_stepsize, steps=steps)
