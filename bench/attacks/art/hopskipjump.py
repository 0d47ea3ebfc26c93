"""ART HopSkipJump, Linf, decision-based, minimum norm."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np

from bench.attacks import AttackInfo, register_attack
from bench.attacks._starts import nearest_other
from bench.attacks.art._base import BATCH_SIZE, ArtAttack
from bench.attacks.base import MinimumNormAttack
from bench.core.registry import at_least, at_most

# Most bisection steps of one boundary search (ART stops at a relative resolution of 0.01/d for Linf, 19 steps on
# a 64x64 patch; 2**-12 of the Linf distance is still far below one grey level), and most halvings of the
# geometric step-size search (unbounded in ART). Both make the query budget independent of the patch size.
HSJ_BINARY_STEPS = 12
HSJ_STEP_HALVINGS = 10


@functools.cache
def _capped_hop_skip_jump() -> type:
    """ART's HopSkipJump with a bounded number of queries per iteration, working under NumPy 2.

    Built lazily (ART imports late).
    """
    from art.attacks.evasion import HopSkipJump

    class CappedHopSkipJump(HopSkipJump):  # type: ignore[misc]  # ART is untyped
        """At most HSJ_BINARY_STEPS boundary-search and HSJ_STEP_HALVINGS step-size queries per iteration."""

        def _adversarial_satisfactory(
            self, samples: np.ndarray, target: int, clip_min: float, clip_max: float
        ) -> np.ndarray:
            # under NumPy 2 ART's float64 interpolation weights turn the samples into float64, which a
            # float32 PyTorch model refuses ("Input type (double) and bias type (float)"): cast back
            samples = np.asarray(samples, dtype=np.float32)
            return np.asarray(super()._adversarial_satisfactory(samples, target, clip_min, clip_max))

        def _binary_search(
            self,
            current_sample: np.ndarray,
            original_sample: np.ndarray,
            target: int,
            norm: float,
            clip_min: float,
            clip_max: float,
            threshold: float | None = None,
        ) -> np.ndarray:
            if threshold is None:  # a search of the main loop (ART's own initialisation passes 0.001)
                cap = 2.0**-HSJ_BINARY_STEPS
                if norm == 2:  # bisection of the interpolation weight in [0, 1]
                    threshold = max(self.theta, cap)
                else:  # bisection of the Linf radius in [0, upper]
                    upper = float(np.max(np.abs(original_sample - current_sample)))
                    threshold = max(min(upper * self.theta, self.theta), upper * cap)
            return np.asarray(
                super()._binary_search(
                    current_sample, original_sample, target, norm, clip_min, clip_max, threshold=threshold
                )
            )

        def _attack(
            self,
            initial_sample: np.ndarray,
            original_sample: np.ndarray,
            target: int,
            mask: np.ndarray | None,
            clip_min: float,
            clip_max: float,
        ) -> np.ndarray:
            # ART 1.20.1's HopSkipJump._attack, with its unbounded step-size search capped
            current_sample = initial_sample
            for _ in range(self.max_iter):
                delta = self._compute_delta(
                    current_sample=current_sample,
                    original_sample=original_sample,
                    clip_min=clip_min,
                    clip_max=clip_max,
                )
                current_sample = self._binary_search(
                    current_sample=current_sample,
                    original_sample=original_sample,
                    norm=self.norm,
                    target=target,
                    clip_min=clip_min,
                    clip_max=clip_max,
                )
                num_eval = min(int(self.init_eval * np.sqrt(self.curr_iter + 1)), self.max_eval)
                update = self._compute_update(
                    current_sample=current_sample,
                    num_eval=num_eval,
                    delta=delta,
                    target=target,
                    mask=mask,
                    clip_min=clip_min,
                    clip_max=clip_max,
                )
                if self.norm == 2:
                    dist = np.linalg.norm(original_sample - current_sample)
                else:
                    dist = np.max(abs(original_sample - current_sample))
                epsilon = 2.0 * dist / np.sqrt(self.curr_iter + 1)
                for _ in range(HSJ_STEP_HALVINGS):
                    epsilon /= 2.0
                    potential_sample = current_sample + epsilon * update
                    if self._adversarial_satisfactory(
                        samples=potential_sample[None], target=target, clip_min=clip_min, clip_max=clip_max
                    )[0]:
                        current_sample = np.clip(potential_sample, clip_min, clip_max)
                        break
                # no step left the boundary region adversarial: stay (the search's limit, epsilon -> 0)
                self.curr_iter += 1
                if np.isnan(current_sample).any():  # pragma: no cover
                    return original_sample
            return current_sample

    return CappedHopSkipJump


def hsj_evaluations(steps: int, init_eval: int, max_eval: int) -> int:
    """Gradient-estimation queries of HopSkipJump over ``steps`` iterations (ART's schedule)."""
    return sum(min(int(init_eval * np.sqrt(t + 1)), max_eval) for t in range(steps))


@register_attack(
    "art.hopskipjump",
    info=AttackInfo(
        "ART HopSkipJump, Linf, decision-based, minimum norm: steps iterations, init_eval*sqrt(t) (<= max_eval) "
        "gradient-estimation queries at iteration t; starts from the nearest differently-labelled image",
        reference="Chen, Jordan & Wainwright, IEEE S&P 2020",
        algorithm="hopskipjump",
    ),
    check=lambda p: "max_eval must be at least init_eval" if p["max_eval"] < p["init_eval"] else None,
)
@dataclass(frozen=True, kw_only=True)
class ArtHopSkipJump(ArtAttack, MinimumNormAttack):
    """HopSkipJump (Linf variant: sign updates, Linf boundary search) through ART, untargeted, unbounded.

    ART draws its starting points from an unseeded ``np.random.RandomState()`` (not reproducible)
    and from uniform noise (which a detector may put in one class only); instead each sample
    starts from the nearest image of the batch that the detector labels differently (one query
    per sample), and samples without one are left unattacked. Per sample at most 5 + steps *
    (12 + 10) + sum_t min(int(init_eval * sqrt(t + 1)), max_eval) queries (:meth:`query_budget`);
    the defaults are tuned for cost (ART's are 50 iterations, 100 to 10,000 estimation queries
    each). The boundary search stops at 2**-12 of the Linf distance (ART: at 0.01/d, which
    depends on the patch size) and the step-size search after 10 halvings (unbounded in ART).
    Strengthen with more steps and a larger init_eval / max_eval.
    """

    threat = "decision"
    init_eval: Annotated[int, at_least(1), at_most(10_000)] = 10
    max_eval: Annotated[int, at_least(1), at_most(100_000)] = 100
    steps: Annotated[int, at_least(1), at_most(1_000)] = 10

    def query_budget(self) -> int:
        per_iteration = HSJ_BINARY_STEPS + HSJ_STEP_HALVINGS
        evaluations = hsj_evaluations(self.steps, self.init_eval, self.max_eval)
        # labels for the starting points, ART's predictions of x and of the starting points, and the two
        # predictions of its closing success-rate log line (computed whatever the log level)
        return 1 + 2 + self.steps * per_iteration + evaluations + 2

    def run_unbounded(self, handle: Any, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        pred = handle.predict(x, batch_size=BATCH_SIZE).argmax(axis=1)
        other = nearest_other(x, y, pred, BATCH_SIZE)
        out = x.copy()
        todo = np.flatnonzero(other >= 0)
        if todo.size:
            attack = _capped_hop_skip_jump()(
                handle,
                batch_size=BATCH_SIZE,
                targeted=False,
                norm=np.inf,
                max_iter=self.steps,
                max_eval=self.max_eval,
                init_eval=self.init_eval,
                init_size=1,
                verbose=False,
            )
            out[todo] = attack.generate(x=x[todo], y=y[todo], x_adv_init=x[other[todo]].copy())
        return out
