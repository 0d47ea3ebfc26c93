"""No defence: plain cross-entropy training."""

from __future__ import annotations

from typing import TYPE_CHECKING

from defenses import Defense, DefenseInfo, register_defense

if TYPE_CHECKING:
    import torch
    from torch import nn


class CrossEntropy(Defense):
    """Standard training objective."""

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        from torch.nn import functional as F

        return F.cross_entropy(model(x), y)


@register_defense("none", info=DefenseInfo("undefended: cross-entropy training"))
def none() -> Defense:
    """The undefended baseline."""
    return CrossEntropy()
