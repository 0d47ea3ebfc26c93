"""The suite's own attacks: a PGD on the logit margin, run by every matrix as the reference.

Every run adds, for each norm its attacks use, two cells per model and attacker's gradient
(bench/run/plan.py): the reference :data:`REFERENCE` at every epsilon, whose rows the
``weaker_than_reference`` flag compares every iterative and minimum-norm white-box row with and
which the ensemble always includes; and the convergence run (:func:`convergence`: 5x the steps of
the libraries' default 10-step PGD, 5 restarts) at the matrix's middle and largest epsilon, behind
the ``not_converged`` flag (bench/run/flags.py, docs/flags.md).

The margin (the best other logit minus the true one) is scale invariant where it matters: a
detector whose logits are multiplied by a large factor saturates the softmax, and the
cross-entropy gradient of ART's and Foolbox's attacks underflows to zero, while the margin's
gradient keeps its direction, and sign steps (Linf) or normalised steps (L2) do not see its scale.
"""

from __future__ import annotations

REFERENCE = {"linf": "bench.pgd", "l2": "bench.pgd-l2"}  # the reference attack of each norm
CONVERGENCE_STEPS = 50  # 5x the 10 steps of art.pgd / foolbox.pgd by default
CONVERGENCE_RESTARTS = 5


def reference(norm: str) -> str:
    """The reference attack of a norm (``linf`` | ``l2``), with its default parameters."""
    return REFERENCE[norm]


def convergence(norm: str) -> str:
    """The convergence run of a norm: the reference with :data:`CONVERGENCE_STEPS` steps and
    :data:`CONVERGENCE_RESTARTS` restarts."""
    return f"{REFERENCE[norm]}[restarts={CONVERGENCE_RESTARTS},steps={CONVERGENCE_STEPS}]"
