"""Training-time defences: the two of Zhao et al. (2018), PGD adversarial training and TRADES.

They live in one file because they share code: the on-the-fly attack that crafts adversarial
images against the model being trained (:func:`craft`) and the input gradient and its norm
(:func:`input_gradient`, :func:`gradient_norm`). A file is one cache unit (its hash is part of
the key of every model trained with one of its entries), so the shared code must sit beside its
users.

Budgets ``eps`` are in 8-bit units (eps/255), like the matrix's ``epsilons_255``. Multi-step
adversaries (PGD, TRADES) craft with the model in evaluation mode (batch-norm running
statistics, as in the reference TRADES implementation) and without touching the parameters'
gradients. Random starts draw from torch's global generator, which the trainer seeds: training
stays deterministic.

Cost on 2 CPU cores (measured, see the README's defence zoo): the budget is 5x the undefended
training time. Three choices keep every defence inside it:

- FGSM takes its direction from the clean images' input gradient of the *training* forward pass
  (train-mode batch norm, as in Goodfellow et al.): one backward through the retained clean graph
  instead of a separate crafting forward and backward (``grad-penalty+adv-train`` reuses the
  penalty's gradient, which is the same gradient). Crafting costs almost nothing extra.
- Clean and adversarial images go through the model in two forward passes of n, not one of 2n:
  on CPU a 2n pass of these full-resolution CNNs costs about 2.6x an n pass (cache effects),
  two n passes 2x. Batch norm therefore normalises each half with its own batch statistics.
- TRADES defaults to 2 inner steps (its paper used 10 on GPUs; 3 cost 7.1x for ``srm``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Callable, Literal

from bench.registry import at_least, at_most, greater_than
from defenses import Defense, DefenseInfo, register_defense

if TYPE_CHECKING:
    import torch
    from torch import nn

ZHAO = ("Zhao, Yang, Ni, Zhao & Wu, 'Security consideration for deep learning-based image forensics', "
        "IEICE Trans. Inf. & Syst. E101-D(12), 2018")  # fmt: skip


def input_gradient(per_sample_loss: torch.Tensor, x: torch.Tensor, *, create_graph: bool) -> torch.Tensor:
    """d loss_i / d x_i for every image: the gradient of the summed losses (up to batch-norm coupling).

    ``x`` must require grad and ``per_sample_loss`` be computed from it. ``create_graph=True``
    keeps the result differentiable (double back-propagation); otherwise the graph is retained
    for the training step's own backward pass.
    """
    import torch

    (grad,) = torch.autograd.grad(per_sample_loss.sum(), x, create_graph=create_graph, retain_graph=True)
    return grad


def gradient_norm(grad: torch.Tensor, squared: bool) -> torch.Tensor:
    """Batch mean of ||grad_i||_2 (or its square)."""
    grad = grad.flatten(1)
    return grad.pow(2).sum(dim=1).mean() if squared else grad.norm(dim=1).mean()


def craft(
    model: nn.Module,
    x: torch.Tensor,
    objective: Callable[[torch.Tensor], torch.Tensor],
    *,
    eps: float,
    steps: int,
    step_size: float,
    start: Literal["none", "uniform", "gaussian"],
) -> torch.Tensor:
    """Linf sign-gradient ascent on ``objective(logits)`` from x within eps (in [0, 1] units), in [0, 1].

    ``start``: "none" (FGSM), "uniform" in the ball (Madry's PGD), "gaussian" with std 0.001
    (TRADES). Returns a detached tensor; the model's mode and parameter gradients are untouched.
    """
    import torch

    was_training = model.training
    model.eval()
    if start == "uniform":
        x_adv = x + torch.empty_like(x).uniform_(-eps, eps)
    elif start == "gaussian":
        x_adv = x + 0.001 * torch.randn_like(x)
    else:
        x_adv = x.clone()
    x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0.0, 1.0).detach()
    for _ in range(steps):
        x_adv.requires_grad_(True)
        (grad,) = torch.autograd.grad(objective(model(x_adv)), x_adv)
        x_adv = x_adv.detach() + step_size * grad.sign()
        x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0.0, 1.0).detach()
    model.train(was_training)
    return x_adv


class GradientNormPenalty(Defense):
    """Cross entropy + lambda * ||d CE / d x||_2 (or squared), the seed paper's first defence."""

    def __init__(self, lam: float, squared: bool) -> None:
        self.lam, self.squared = lam, squared

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        from torch.nn import functional as F

        x = x.detach().requires_grad_(True)
        per_sample = F.cross_entropy(model(x), y, reduction="none")
        penalty = gradient_norm(input_gradient(per_sample, x, create_graph=True), self.squared)
        return per_sample.mean() + self.lam * penalty


class AdversarialTraining(Defense):
    """mix * CE(clean) + (1 - mix) * CE(adversarial) on a fused batch (+ optional gradient penalty).

    ``attack="fgsm"``: one signed-gradient step of size eps along the clean loss's input gradient
    from the training forward pass, no random start (Goodfellow et al., the seed paper's choice);
    ``attack="pgd"``: uniform random start and ``steps`` steps of 2.5 * eps / steps, crafted in
    evaluation mode (Madry et al.). With ``lam > 0`` the clean half also carries the
    input-gradient penalty (``grad-penalty+adv-train``), whose gradient FGSM reuses.
    """

    def __init__(self, attack: str, eps_255: float, steps: int, mix: float, lam: float = 0.0, squared: bool = False) -> None:
        self.attack, self.eps, self.steps, self.mix = attack, eps_255 / 255.0, steps, mix
        self.lam, self.squared = lam, squared

    def _clean_and_adversarial(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Per-sample clean loss (training mode), the adversarial images, the penalty (None if lam == 0)."""
        from torch.nn import functional as F

        if self.attack == "pgd":
            def objective(logits: torch.Tensor) -> torch.Tensor:
                return F.cross_entropy(logits, y, reduction="sum")

            x_adv = craft(model, x, objective, eps=self.eps, steps=self.steps, step_size=2.5 * self.eps / self.steps,
                          start="uniform")  # fmt: skip
        x = x.detach().requires_grad_(self.attack == "fgsm" or self.lam > 0)
        clean = F.cross_entropy(model(x), y, reduction="none")
        grad = input_gradient(clean, x, create_graph=self.lam > 0) if x.requires_grad else None
        if self.attack == "fgsm":
            assert grad is not None
            x_adv = (x.detach() + self.eps * grad.detach().sign()).clamp(0.0, 1.0)
        penalty = gradient_norm(grad, self.squared) if self.lam > 0 and grad is not None else None
        return clean, x_adv, penalty

    def adversarial(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The adversarial half of the fused batch the training step would use (detached)."""
        return self._clean_and_adversarial(model, x, y)[1].detach()

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        from torch.nn import functional as F

        clean, x_adv, penalty = self._clean_and_adversarial(model, x, y)
        total = self.mix * clean.mean() + (1 - self.mix) * F.cross_entropy(model(x_adv), y)
        return total if penalty is None else total + self.lam * penalty


class Trades(Defense):
    """CE(clean) + beta * KL(p(clean) || p(adversarial)), the adversary maximising the KL (Zhang et al.)."""

    def __init__(self, beta: float, eps_255: float, steps: int) -> None:
        self.beta, self.eps, self.steps = beta, eps_255 / 255.0, steps

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        import torch
        from torch.nn import functional as F

        was_training = model.training
        model.eval()
        with torch.no_grad():
            p_clean = F.softmax(model(x), dim=1)
        model.train(was_training)

        def objective(logits: torch.Tensor) -> torch.Tensor:
            return F.kl_div(F.log_softmax(logits, dim=1), p_clean, reduction="sum")

        x_adv = craft(model, x, objective, eps=self.eps, steps=self.steps, step_size=2.5 * self.eps / self.steps,
                      start="gaussian")  # fmt: skip
        logits = model(x)  # two passes of n: cheaper on CPU than one of 2n (module docstring)
        robust = F.kl_div(F.log_softmax(model(x_adv), dim=1), F.softmax(logits, dim=1), reduction="batchmean")
        return F.cross_entropy(logits, y) + self.beta * robust


@register_defense(
    "grad-penalty",
    info=DefenseInfo(
        "cross entropy + lambda * 2-norm (squared: its square) of the loss gradient w.r.t. the input image "
        "(double back-propagation)",
        reference=f"{ZHAO}; Ross & Doshi-Velez, AAAI 2018",
    ),
)
def grad_penalty(*, lambda_: Annotated[float, at_least(0.0)] = 0.01, squared: bool = False) -> Defense:
    """The seed paper's gradient-norm regulariser."""
    return GradientNormPenalty(lambda_, squared)


AttackName = Literal["fgsm", "pgd"]


def _one_step_fgsm(params: dict) -> str | None:
    if params["attack"] == "fgsm" and params["steps"] != 1:
        return f"attack=fgsm takes one step, not steps={params['steps']}; use attack=pgd for several steps"
    return None


@register_defense(
    "adv-train",
    info=DefenseInfo(
        "fused adversarial training: mix * CE(clean) + (1 - mix) * CE(adversarial), adversarial images crafted "
        "on the fly against the current model (FGSM, or PGD with random start); eps in 8-bit units",
        reference=f"{ZHAO} (fused training); Goodfellow et al., ICLR 2015 (FGSM); Madry et al., ICLR 2018 (PGD)",
    ),
    check=_one_step_fgsm,
)
def adv_train(
    *,
    attack: AttackName = "fgsm",
    eps: Annotated[float, greater_than(0.0)] = 1.0,
    steps: Annotated[int, at_least(1)] = 1,
    mix: Annotated[float, at_least(0.0), at_most(1.0)] = 0.5,
) -> Defense:
    """The seed paper's second defence (FGSM) and Madry's PGD training (``attack=pgd,steps=k``)."""
    return AdversarialTraining(attack, eps, steps, mix)


@register_defense(
    "grad-penalty+adv-train",
    info=DefenseInfo(
        "both of the seed paper's defences at once: fused adversarial training + lambda * input-gradient norm "
        "of the clean images' loss",
        reference=ZHAO,
    ),
    check=_one_step_fgsm,
)
def grad_penalty_adv_train(
    *,
    lambda_: Annotated[float, at_least(0.0)] = 0.01,
    squared: bool = False,
    attack: AttackName = "fgsm",
    eps: Annotated[float, greater_than(0.0)] = 1.0,
    steps: Annotated[int, at_least(1)] = 1,
    mix: Annotated[float, at_least(0.0), at_most(1.0)] = 0.5,
) -> Defense:
    """Gradient-norm penalty and fused adversarial training combined."""
    return AdversarialTraining(attack, eps, steps, mix, lam=lambda_, squared=squared)


@register_defense(
    "trades",
    info=DefenseInfo(
        "TRADES: CE(clean) + beta * KL(p(clean) || p(adversarial)), the adversary maximising the KL with "
        "steps of 2.5 * eps / steps from a small Gaussian start; eps in 8-bit units",
        reference="Zhang, Yu, Jiao, Xing, El Ghaoui & Jordan, ICML 2019",
    ),
)
def trades(
    *,
    beta: Annotated[float, at_least(0.0)] = 6.0,
    eps: Annotated[float, greater_than(0.0)] = 1.0,
    steps: Annotated[int, at_least(1)] = 2,
) -> Defense:
    """TRADES (Zhang et al. 2019)."""
    return Trades(beta, eps, steps)
