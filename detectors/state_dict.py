"""A trained network given as a weights-only state dict and the factory that builds its module."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from detectors import register_detector
from detectors._networks import NetworkInfo, check_factory, load_state_dict

if TYPE_CHECKING:
    from torch import nn


def _check(values: dict[str, Any]) -> str | None:
    """A factory given must name one (both parameters are required when the network is loaded;
    the defaults name none, for ``bench list``)."""
    return check_factory(values["factory"]) if values["factory"] else None


@register_detector(
    "state-dict",
    info=NetworkInfo(
        "your own trained network as a state dict (torch.save(model.state_dict())) and its factory: a registered "
        "detector, parameters separated by ';' (srm[width=8;hard=true]), or package.module:function; "
        "evaluated without training, its test accuracy measured",
        reference="-",
    ),
    check=_check,
)
def state_dict(*, factory: str = "", path: str = "", in_channels: int = 1, num_classes: int = 2) -> nn.Module:
    """Build ``factory``'s module for the task and load the weights-only state dict ``path`` into it."""
    return load_state_dict(path, factory, in_channels=in_channels, num_classes=num_classes)
