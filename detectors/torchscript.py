"""A trained network given as a TorchScript file (evaluated as it is, never trained here)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from detectors import register_detector
from detectors._networks import NetworkInfo, load_torchscript

if TYPE_CHECKING:
    from torch import nn


@register_detector(
    "torchscript",
    info=NetworkInfo(
        "your own trained network as a TorchScript file (torch.jit.script / torch.jit.trace + torch.jit.save): "
        "images in [0, 1] (N, C, H, W) in, logits out; evaluated without training, its test accuracy measured",
        reference="-",
    ),
)
def torchscript(*, path: str = "", in_channels: int = 1, num_classes: int = 2) -> nn.Module:
    """Load the TorchScript file ``path`` (required: the default names none, for ``bench list``); the
    task's channels and classes are checked by a dry forward pass when the matrix is read
    (detectors/_networks.py, ``check_network``)."""
    return load_torchscript(path)
