"""What every Foolbox adapter shares: the detector as a ``foolbox.PyTorchModel``, and running a
Foolbox attack object at one epsilon or unbounded in batches."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any

import numpy as np

from bench.attacks.base import Attack

if TYPE_CHECKING:
    import torch
    from torch import nn

BATCH_SIZE = 256


class FoolboxAttack(Attack):
    """Base of Foolbox adapters: implement :meth:`make` (the Foolbox attack object)."""

    library = "foolbox"

    def prepare(
        self, model: nn.Module, input_shape: tuple[int, ...], num_classes: int, *, device: torch.device | None = None
    ) -> Any:
        import foolbox

        # Foolbox runs on the device it is given; the tensors handed to it go there (:func:`to_handle`)
        return foolbox.PyTorchModel(model, bounds=(0.0, 1.0), device=device if device is not None else "cpu")

    @abc.abstractmethod
    def make(self) -> Any:
        """The Foolbox attack object."""

    def run(self, handle: Any, x: np.ndarray, y: np.ndarray, eps: float) -> np.ndarray:
        """Fixed-epsilon attacks: the Foolbox attack at ``eps``, its clipped output."""

        _, clipped, _ = self.make()(handle, to_handle(handle, x), to_handle(handle, y), epsilons=eps)
        return np.asarray(clipped.detach().cpu().numpy())

    def run_unbounded(self, handle: Any, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Minimum-norm attacks: the Foolbox attack with ``epsilons=None`` (no bound), its raw output.

        Run in batches of :data:`BATCH_SIZE`, as the ART adapters are: Foolbox takes whatever batch
        it is given, and on CPU one large batch of 64x64 patches is slower than batches of 256
        (docs/design.md, Attacks). DeepFool, C&W (without ``abort_early``) and FMN treat every
        sample on its own, so batching changes no result.
        """
        attack = self.make()
        out = []
        for i in range(0, len(x), BATCH_SIZE):
            xb, yb = to_handle(handle, x[i : i + BATCH_SIZE]), to_handle(handle, y[i : i + BATCH_SIZE])
            raw, _, _ = attack(handle, xb, yb, epsilons=None)
            out.append(raw.detach().cpu().numpy())
        return np.concatenate(out) if out else x.copy()


def to_handle(handle: Any, array: np.ndarray) -> torch.Tensor:
    """A numpy array as a tensor on the device of a ``foolbox.PyTorchModel`` (no copy on the CPU)."""
    import torch

    return torch.from_numpy(array).to(handle.device)
