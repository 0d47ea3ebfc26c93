"""Foolbox BoundaryAttack, L2, decision-based, minimum norm."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np

from bench.attacks import AttackInfo, register_attack
from bench.attacks._starts import nearest_other
from bench.attacks.base import MinimumNormAttack
from bench.attacks.foolbox._base import BATCH_SIZE, FoolboxAttack, to_handle
from bench.core.registry import at_least, at_most

BOUNDARY_INIT_STEPS = 10  # bisection steps from each starting image towards the clean one


@register_attack(
    "foolbox.boundary",
    info=AttackInfo(
        "Foolbox BoundaryAttack, L2, decision-based, minimum norm: steps random-walk steps along the boundary "
        "(13 + 1.1 * steps queries); starts from the nearest differently-labelled image",
        reference="Brendel, Rauber & Bethge, ICLR 2018",
        algorithm="boundary",
    ),
)
@dataclass(frozen=True, kw_only=True)
class FoolboxBoundary(FoolboxAttack, MinimumNormAttack):
    """Boundary Attack through Foolbox, started near the boundary.

    Foolbox's default initialisation (blended uniform noise, up to 1000 + 51 queries) fails on
    detectors that put all noise in one class, and then BoundaryAttack raises for the whole batch.
    Each sample starts instead from the nearest image of the batch that the detector labels
    differently (one query per sample), moved towards the clean image by BOUNDARY_INIT_STEPS
    bisection steps of the blending weight; samples without such an image are left unattacked.
    Per sample at most 13 + steps + steps // 10 queries (the default is tuned for cost;
    Foolbox's is 25,000 steps). Foolbox adapts its step sizes only after 100 spherical checks
    (1000 steps), so short runs keep the initial 1% steps. Strengthen with more ``steps``.
    """

    norm = "l2"
    threat = "decision"
    steps: Annotated[int, at_least(1), at_most(100_000)] = 300

    def query_budget(self) -> int:
        # labels, bisection, our and Foolbox's checks of the starting points, one candidate per step and
        # one spherical candidate every 10th step (update_stats_every_k)
        return 1 + BOUNDARY_INIT_STEPS + 2 + self.steps + self.steps // 10

    def make(self) -> Any:
        import foolbox

        return foolbox.attacks.BoundaryAttack(steps=self.steps, tensorboard=False)

    def run_unbounded(self, handle: Any, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        import torch

        def labels(images: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return np.asarray(handle(to_handle(handle, np.ascontiguousarray(images))).argmax(dim=1).cpu().numpy())

        other = nearest_other(x, y, labels(x), BATCH_SIZE)
        out = x.copy()
        todo = np.flatnonzero(other >= 0)
        if not todo.size:
            return out
        x0, target, y0 = x[todo], x[other[todo]], y[todo]
        lo = np.zeros(len(todo), dtype=np.float32)  # blending weights known not adversarial (the clean image)
        hi = np.ones(len(todo), dtype=np.float32)  # and known adversarial (the other image)
        start = target.copy()
        for _ in range(BOUNDARY_INIT_STEPS):
            mid = (lo + hi) / 2
            blend = (x0 + mid[:, None, None, None] * (target - x0)).astype(np.float32)
            adv = labels(blend) != y0
            start[adv] = blend[adv]
            hi = np.where(adv, mid, hi)
            lo = np.where(adv, lo, mid)
        # BoundaryAttack raises for the whole batch if one starting point is not adversarial: check them
        # together (batch composition can move a knife-edge prediction) and leave out any that are not
        ok = labels(start) != y0
        todo, x0, y0, start = todo[ok], x0[ok], y0[ok], start[ok]
        if todo.size:
            starts = to_handle(handle, start)
            advs = self.make().run(handle, to_handle(handle, x0), to_handle(handle, y0), starting_points=starts)
            out[todo] = advs.detach().cpu().numpy()
        return out
