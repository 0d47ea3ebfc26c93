"""Adapters over the Adversarial Robustness Toolbox (ART)."""

from __future__ import annotations

import functools
import sys
import types
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, Iterator

import numpy as np

from bench.attacks import AttackInfo, register_attack
from bench.attacks.base import Attack
from bench.registry import at_least, greater_than

if TYPE_CHECKING:
    from torch import nn

BATCH_SIZE = 256
# HopSkipJump: most bisection steps of one boundary search (ART stops at a relative resolution of 0.01/d for
# Linf, 19 steps on a 64x64 patch; 2**-12 of the Linf distance is still far below one grey level), and most
# halvings of its geometric step-size search (unbounded in ART). Both make the query budget independent of
# the patch size.
HSJ_BINARY_STEPS = 12
HSJ_STEP_HALVINGS = 10


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


def _art_norm(norm: str) -> float:
    return {"linf": np.inf, "l2": 2}[norm]


class ArtFGSM(ArtAttack):
    """ART FastGradientMethod, Linf, no random start."""

    def run(self, handle: Any, x: np.ndarray, y: np.ndarray, eps: float) -> np.ndarray:
        from art.attacks.evasion import FastGradientMethod

        attack = FastGradientMethod(handle, norm=np.inf, eps=eps, eps_step=eps, batch_size=BATCH_SIZE)
        return attack.generate(x=x, y=y)


class ArtPGD(ArtAttack):
    """ART ProjectedGradientDescent in the class's norm; step size relative to epsilon."""

    def run(self, handle: Any, x: np.ndarray, y: np.ndarray, eps: float) -> np.ndarray:
        from art.attacks.evasion import ProjectedGradientDescent

        attack = ProjectedGradientDescent(
            handle,
            norm=_art_norm(self.norm),
            eps=eps,
            eps_step=self.params["rel_stepsize"] * eps,
            max_iter=self.params["steps"],
            num_random_init=int(self.params["random_start"]),
            batch_size=BATCH_SIZE,
            verbose=False,
        )
        return attack.generate(x=x, y=y)


class ArtPGDL2(ArtPGD):
    """ART ProjectedGradientDescent, L2."""

    norm = "l2"


class ArtBIM(ArtAttack):
    """ART BasicIterativeMethod: Linf PGD from the clean image (no random start)."""

    def run(self, handle: Any, x: np.ndarray, y: np.ndarray, eps: float) -> np.ndarray:
        from art.attacks.evasion import BasicIterativeMethod

        attack = BasicIterativeMethod(
            handle,
            eps=eps,
            eps_step=self.params["rel_stepsize"] * eps,
            max_iter=self.params["steps"],
            batch_size=BATCH_SIZE,
            verbose=False,
        )
        return attack.generate(x=x, y=y)


class ArtDeepFool(ArtAttack):
    """ART DeepFool (the L2 algorithm), unbounded; ``overshoot`` is ART's ``epsilon``."""

    norm = "l2"
    minimum_norm = True

    def run_unbounded(self, handle: Any, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        from art.attacks.evasion import DeepFool

        # DeepFool attacks the predicted class; the harness only passes correctly classified samples
        attack = DeepFool(
            handle, max_iter=self.params["steps"], epsilon=self.params["overshoot"], batch_size=BATCH_SIZE,
            verbose=False,
        )  # fmt: skip
        return attack.generate(x=x)


class ArtCarliniL2(ArtAttack):
    """ART CarliniL2Method, unbounded (plain gradient steps in tanh space with a line search)."""

    norm = "l2"
    minimum_norm = True

    def run_unbounded(self, handle: Any, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        from art.attacks.evasion import CarliniL2Method

        attack = CarliniL2Method(
            handle,
            confidence=0.0,
            learning_rate=self.params["learning_rate"],
            binary_search_steps=self.params["binary_steps"],
            max_iter=self.params["steps"],
            initial_const=self.params["initial_const"],
            batch_size=BATCH_SIZE,
            verbose=False,
        )
        return attack.generate(x=x, y=y)  # samples it could not fool come back unchanged


def _square_iterations(queries: int) -> int:
    """Iterations of one ART SquareAttack restart that fit ``queries`` model queries per sample.

    ART's Linf loop queries each sample 3 times per iteration (the robustness check of the whole
    batch, the current and the candidate loss) and 3 times before it (the same for the initial
    stripes): at most 3 + 3 * max_iter queries.
    """
    return (queries - 3) // 3


class ArtSquare(ArtAttack):
    """ART SquareAttack, Linf, one restart, as many iterations as the query budget allows."""

    threat = "score"

    def query_budget(self) -> int:
        return 3 + 3 * _square_iterations(self.params["queries"])

    def run(self, handle: Any, x: np.ndarray, y: np.ndarray, eps: float) -> np.ndarray:
        from art.attacks.evasion import SquareAttack

        attack = SquareAttack(
            handle, norm=np.inf, max_iter=_square_iterations(self.params["queries"]), eps=eps, nb_restarts=1,
            batch_size=BATCH_SIZE, verbose=False,
        )  # fmt: skip
        return attack.generate(x=x, y=y)


def _nearest_other(x: np.ndarray, y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """For each sample, the index of the nearest (L2) image of the batch predicted as another class, or -1."""
    flat = x.reshape(len(x), -1).astype(np.float64)
    sq = (flat * flat).sum(axis=1)
    out = np.full(len(x), -1)
    for start in range(0, len(x), BATCH_SIZE):
        rows = slice(start, start + BATCH_SIZE)
        dist = sq[rows, None] + sq[None, :] - 2.0 * flat[rows] @ flat.T
        dist[pred[None, :] == y[rows, None]] = np.inf
        best = dist.argmin(axis=1)
        out[rows] = np.where(np.isfinite(dist[np.arange(len(best)), best]), best, -1)
    return out


@functools.cache
def _capped_hop_skip_jump() -> type:
    """ART's HopSkipJump with a bounded number of queries per iteration, working under NumPy 2.

    Built lazily (ART imports late).
    """
    from art.attacks.evasion import HopSkipJump

    class CappedHopSkipJump(HopSkipJump):
        """At most HSJ_BINARY_STEPS boundary-search and HSJ_STEP_HALVINGS step-size queries per iteration."""

        def _adversarial_satisfactory(self, samples, target, clip_min, clip_max):  # noqa: ANN001, ANN202
            # under NumPy 2 ART's float64 interpolation weights turn the samples into float64, which a
            # float32 PyTorch model refuses ("Input type (double) and bias type (float)"): cast back
            return super()._adversarial_satisfactory(np.asarray(samples, dtype=np.float32), target, clip_min, clip_max)

        def _binary_search(  # noqa: ANN202
            self, current_sample, original_sample, target, norm, clip_min, clip_max, threshold=None  # noqa: ANN001
        ):
            if threshold is None:  # a search of the main loop (ART's own initialisation passes 0.001)
                cap = 2.0**-HSJ_BINARY_STEPS
                if norm == 2:  # bisection of the interpolation weight in [0, 1]
                    threshold = max(self.theta, cap)
                else:  # bisection of the Linf radius in [0, upper]
                    upper = float(np.max(np.abs(original_sample - current_sample)))
                    threshold = max(min(upper * self.theta, self.theta), upper * cap)
            return super()._binary_search(
                current_sample, original_sample, target, norm, clip_min, clip_max, threshold=threshold
            )

        def _attack(self, initial_sample, original_sample, target, mask, clip_min, clip_max):  # noqa: ANN001, ANN202
            # ART 1.20.1's HopSkipJump._attack, with its unbounded step-size search capped
            current_sample = initial_sample
            for _ in range(self.max_iter):
                delta = self._compute_delta(
                    current_sample=current_sample, original_sample=original_sample, clip_min=clip_min,
                    clip_max=clip_max,
                )  # fmt: skip
                current_sample = self._binary_search(
                    current_sample=current_sample, original_sample=original_sample, norm=self.norm, target=target,
                    clip_min=clip_min, clip_max=clip_max,
                )  # fmt: skip
                num_eval = min(int(self.init_eval * np.sqrt(self.curr_iter + 1)), self.max_eval)
                update = self._compute_update(
                    current_sample=current_sample, num_eval=num_eval, delta=delta, target=target, mask=mask,
                    clip_min=clip_min, clip_max=clip_max,
                )  # fmt: skip
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


def _hsj_evaluations(steps: int, init_eval: int, max_eval: int) -> int:
    """Gradient-estimation queries of HopSkipJump over ``steps`` iterations (ART's schedule)."""
    return sum(min(int(init_eval * np.sqrt(t + 1)), max_eval) for t in range(steps))


class ArtHopSkipJump(ArtAttack):
    """ART HopSkipJump, Linf, untargeted, unbounded; started from the nearest differently-labelled image.

    ART draws its starting points from an unseeded ``np.random.RandomState()`` (not reproducible) and
    from uniform noise (which a detector may put in one class only); instead each sample starts from
    the nearest image of the batch that the detector labels differently (one query per sample), and
    samples without one are left unattacked.
    """

    norm = "linf"
    minimum_norm = True
    threat = "decision"

    def query_budget(self) -> int:
        steps = self.params["steps"]
        per_iteration = HSJ_BINARY_STEPS + HSJ_STEP_HALVINGS
        evaluations = _hsj_evaluations(steps, self.params["init_eval"], self.params["max_eval"])
        # labels for the starting points, ART's predictions of x and of the starting points, and the two
        # predictions of its closing success-rate log line (computed whatever the log level)
        return 1 + 2 + steps * per_iteration + evaluations + 2

    def run_unbounded(self, handle: Any, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        pred = handle.predict(x, batch_size=BATCH_SIZE).argmax(axis=1)
        other = _nearest_other(x, y, pred)
        out = x.copy()
        todo = np.flatnonzero(other >= 0)
        if todo.size:
            attack = _capped_hop_skip_jump()(
                handle, batch_size=BATCH_SIZE, targeted=False, norm=np.inf, max_iter=self.params["steps"],
                max_eval=self.params["max_eval"], init_eval=self.params["init_eval"], init_size=1, verbose=False,
            )  # fmt: skip
            out[todo] = attack.generate(x=x[todo], y=y[todo], x_adv_init=x[other[todo]].copy())
        return out


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


class ArtAutoAttack(ArtAttack):
    """ART AutoAttack, Linf, with a cheap list: APGD-CE (one start) then Square on what survives.

    ART's default list (APGD-CE and APGD-DLR with 5 x 100 iterations, DeepFool, Square with 5 x 5000
    iterations) is far too slow here, and its DLR loss needs at least 3 classes. APGD starts from a
    step of eps / 2, not the paper's 2 * eps: ART's APGD returns its last iterate (not the best one
    found), and with few iterations the large first steps leave it oscillating across the boundary.
    """

    def run(self, handle: Any, x: np.ndarray, y: np.ndarray, eps: float) -> np.ndarray:
        from art.attacks.evasion import AutoAttack, AutoProjectedGradientDescent, SquareAttack

        attacks = [
            AutoProjectedGradientDescent(
                handle, norm=np.inf, eps=eps, eps_step=eps / 2, max_iter=self.params["apgd_steps"], targeted=False,
                nb_random_init=1, batch_size=BATCH_SIZE, loss_type="cross_entropy", verbose=False,
            ),
            SquareAttack(
                handle, norm=np.inf, max_iter=_square_iterations(self.params["square_queries"]), eps=eps,
                nb_restarts=1, batch_size=BATCH_SIZE, verbose=False,
            ),
        ]  # fmt: skip
        attack = AutoAttack(handle, norm=np.inf, eps=eps, eps_step=eps / 2, attacks=attacks, batch_size=BATCH_SIZE)
        with _multiprocess_importable():
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


@register_attack(
    "art.bim",
    info=AttackInfo(
        "ART BasicIterativeMethod (BIM), Linf, steps signed-gradient steps of rel_stepsize * eps from the clean image",
        library="art",
        reference="Kurakin, Goodfellow & Bengio, ICLR 2017 workshop",
    ),
)
def art_bim(
    *,
    rel_stepsize: Annotated[float, greater_than(0.0)] = 0.25,
    steps: Annotated[int, at_least(1)] = 10,
) -> Attack:
    """BIM (iterative FGSM, PGD without random start) through ART."""
    return ArtBIM(rel_stepsize=rel_stepsize, steps=steps)


@register_attack(
    "art.pgd-l2",
    info=AttackInfo(
        "ART ProjectedGradientDescent, L2, random start, step = rel_stepsize * eps",
        library="art",
        norm="l2",
        reference="Madry et al., ICLR 2018",
    ),
)
def art_pgd_l2(
    *,
    random_start: bool = True,
    rel_stepsize: Annotated[float, greater_than(0.0)] = 0.25,
    steps: Annotated[int, at_least(1)] = 10,
) -> Attack:
    """L2 PGD through ART."""
    return ArtPGDL2(random_start=random_start, rel_stepsize=rel_stepsize, steps=steps)


@register_attack(
    "art.deepfool",
    info=AttackInfo(
        "ART DeepFool (its L2 algorithm), minimum norm: at most steps linearised steps, final overshoot",
        library="art",
        norm="l2",
        reference="Moosavi-Dezfooli, Fawzi & Frossard, CVPR 2016",
    ),
)
def art_deepfool(
    *,
    overshoot: Annotated[float, at_least(0.0)] = 0.02,
    steps: Annotated[int, at_least(1)] = 5,
) -> Attack:
    """DeepFool through ART; ART implements the L2 variant, so this is an L2 minimum-norm attack.

    Defaults are tuned for cost (at most 1.5x ART PGD with 10 steps, `python -m bench costs`): ART
    computes the gradient of every class at each step and applies the overshoot only at the end, so
    samples that land on the boundary keep the whole batch iterating to the last step. ``overshoot``
    is ART's ``epsilon`` (1e-6 there; 0.02 as in the paper and Foolbox). Strengthen with more
    ``steps`` (ART: 100) - except on saturated detectors: on `bayar`'s pristine patches with
    saturated tanh layers, 100 steps leave exactly the curve of 6 (a linearised step from a
    plateau lands on another one; docs/design.md, Attacks).
    """
    return ArtDeepFool(overshoot=overshoot, steps=steps)


@register_attack(
    "art.cw-l2",
    info=AttackInfo(
        "ART CarliniL2Method, minimum norm: binary_steps searches over the constant from initial_const, "
        "steps line-searched gradient steps each",
        library="art",
        norm="l2",
        reference="Carlini & Wagner, IEEE S&P 2017",
    ),
)
def art_cw_l2(
    *,
    binary_steps: Annotated[int, at_least(1)] = 1,
    initial_const: Annotated[float, greater_than(0.0)] = 0.03,
    learning_rate: Annotated[float, greater_than(0.0)] = 0.05,
    steps: Annotated[int, at_least(1)] = 2,
) -> Attack:
    """Carlini & Wagner L2 through ART.

    Defaults are tuned for cost (at most 1.5x ART PGD with 10 steps, `python -m bench costs`; 3 steps
    cost 1.8-1.9x): each ART step costs two gradient passes per class in the batch plus a line
    search of up to 5 halvings and 5 doublings (forward passes), so only 2 steps fit, with no
    binary search over the constant. ART takes plain (not normalised) gradient steps, so what
    matters is learning_rate * initial_const: 1.5e-3 (ART's defaults give 1e-4) reaches in 2 steps
    what 3e-4 reached in 3 on `srm` (robust 0.064 / 0.024 at L2 e = 1 / 2 against 0.164 / 0.138
    with 3e-4 in 2 steps). Strengthen with binary_steps 5-10 and steps 10-100 (ART: 10 x 10; on
    `bayar`'s saturated pristine patches even that, at about 17x the cost of PGD, leaves 41% at
    L2 e = 2 where PGD leaves 0%).
    """
    return ArtCarliniL2(binary_steps=binary_steps, initial_const=initial_const, learning_rate=learning_rate,
                        steps=steps)  # fmt: skip


@register_attack(
    "art.square",
    info=AttackInfo(
        "ART SquareAttack, Linf, score-based, one restart with at most queries model queries per sample",
        library="art",
        reference="Andriushchenko, Croce, Flammarion & Hein, ECCV 2020",
    ),
)
def art_square(*, queries: Annotated[int, at_least(6)] = 300) -> Attack:
    """Square Attack through ART: random square updates kept when the margin loss drops.

    ART spends three queries per sample per iteration (the robustness check of the batch, the
    current and the candidate loss), so ``queries`` = 300 runs 99 iterations. Strengthen with more
    queries (the paper uses up to 10,000).
    """
    return ArtSquare(queries=queries)


@register_attack(
    "art.hopskipjump",
    info=AttackInfo(
        "ART HopSkipJump, Linf, decision-based, minimum norm: steps iterations, init_eval*sqrt(t) (<= max_eval) "
        "gradient-estimation queries at iteration t; starts from the nearest differently-labelled image",
        library="art",
        norm="linf",
        reference="Chen, Jordan & Wainwright, IEEE S&P 2020",
    ),
    check=lambda p: "max_eval must be at least init_eval" if p["max_eval"] < p["init_eval"] else None,
)
def art_hopskipjump(
    *,
    init_eval: Annotated[int, at_least(1)] = 10,
    max_eval: Annotated[int, at_least(1)] = 100,
    steps: Annotated[int, at_least(1)] = 10,
) -> Attack:
    """HopSkipJump (Linf variant: sign updates, Linf boundary search) through ART.

    Per sample at most 5 + steps * (12 + 10) + sum_t min(int(init_eval * sqrt(t + 1)), max_eval)
    queries: 447 with the defaults, which are tuned for cost (ART's are 50 iterations, 100 to 10,000
    estimation queries each). The boundary search stops at 2**-12 of the Linf distance (ART: at 0.01/d,
    which depends on the patch size) and the step-size search after 10 halvings (unbounded in ART).
    Strengthen with more steps and a larger init_eval / max_eval.
    """
    return ArtHopSkipJump(init_eval=init_eval, max_eval=max_eval, steps=steps)


@register_attack(
    "art.autoattack",
    info=AttackInfo(
        "ART AutoAttack, Linf, cheap list: APGD-CE (apgd_steps iterations from step eps/2, one start), then "
        "Square (square_queries queries) on the survivors",
        library="art",
        reference="Croce & Hein, ICML 2020",
    ),
)
def art_autoattack(
    *,
    apgd_steps: Annotated[int, at_least(1)] = 10,
    square_queries: Annotated[int, at_least(6)] = 100,
) -> Attack:
    """AutoAttack through ART with a cheap list of attacks suited to 2-class detectors.

    The standard list (APGD-CE, APGD-DLR, FAB, Square with 100 iterations and 5000 queries) costs
    hundreds of passes per sample, and the DLR loss needs at least 3 classes. Strengthen with more
    apgd_steps (100 in the paper) and square_queries (5000).
    """
    return ArtAutoAttack(apgd_steps=apgd_steps, square_queries=square_queries)
