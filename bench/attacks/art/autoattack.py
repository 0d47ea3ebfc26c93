"""ART AutoAttack, Linf, with a cheap list of attacks."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np

from bench.attacks import AttackInfo, register_attack
from bench.attacks.art._base import BATCH_SIZE, ArtAttack
from bench.attacks.art.square import square_iterations
from bench.attacks.base import FixedEpsilonAttack
from bench.core.registry import at_least, at_most


@contextmanager
def _multiprocess_importable() -> Iterator[None]:
    """ART's AutoAttack.generate imports ``multiprocess`` even when it runs sequentially (parallel_pool_size=0),
    and ART does not depend on it: put an empty stand-in module in place for the call if it is missing."""
    try:
        import multiprocess  # noqa: F401

        stub = None
    except ImportError:
        stub = types.ModuleType("multiprocess")
        sys.modules["multiprocess"] = stub
    try:
        yield
    finally:
        if stub is not None and sys.modules.get("multiprocess") is stub:
            del sys.modules["multiprocess"]


@register_attack(
    "art.autoattack",
    info=AttackInfo(
        "ART AutoAttack, Linf, cheap list: APGD-CE (apgd_steps iterations from step eps/2, one start), then "
        "Square (square_queries queries) on the survivors",
        reference="Croce & Hein, ICML 2020",
        algorithm="autoattack",
    ),
)
@dataclass(frozen=True, kw_only=True)
class ArtAutoAttack(ArtAttack, FixedEpsilonAttack):
    """AutoAttack through ART with a cheap list suited to 2-class detectors: APGD-CE, then Square.

    ART's default list (APGD-CE and APGD-DLR with 5 x 100 iterations, DeepFool, Square with 5 x
    5000 iterations) costs hundreds of passes per sample, and its DLR loss needs at least 3
    classes. APGD starts from a step of eps / 2, not the paper's 2 * eps: ART's APGD returns its
    last iterate (not the best one found), and with few iterations the large first steps leave it
    oscillating across the boundary. Strengthen with more apgd_steps (100 in the paper) and
    square_queries (5000).
    """

    apgd_steps: Annotated[int, at_least(1), at_most(10_000)] = 10
    square_queries: Annotated[int, at_least(6), at_most(100_000)] = 100

    def run(self, handle: Any, x: np.ndarray, y: np.ndarray, eps: float) -> np.ndarray:
        from art.attacks.evasion import AutoAttack, AutoProjectedGradientDescent, SquareAttack

        attacks = [
            AutoProjectedGradientDescent(
                handle,
                norm=np.inf,
                eps=eps,
                eps_step=eps / 2,
                max_iter=self.apgd_steps,
                targeted=False,
                nb_random_init=1,
                batch_size=BATCH_SIZE,
                loss_type="cross_entropy",
                verbose=False,
            ),
            SquareAttack(
                handle,
                norm=np.inf,
                max_iter=square_iterations(self.square_queries),
                eps=eps,
                nb_restarts=1,
                batch_size=BATCH_SIZE,
                verbose=False,
            ),
        ]
        attack = AutoAttack(handle, norm=np.inf, eps=eps, eps_step=eps / 2, attacks=attacks, batch_size=BATCH_SIZE)
        with _multiprocess_importable():
            return np.asarray(attack.generate(x=x, y=y))
