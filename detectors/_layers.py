"""Building blocks shared by the detectors: forensic front ends and a small CNN trunk."""

from __future__ import annotations

import torch
from torch import nn


class BayarConv2d(nn.Conv2d):
    """Constrained convolution of Bayar & Stamm (2016, 2018).

    Each kernel predicts its centre pixel from the neighbours and subtracts it: the centre
    weight is fixed at -1 and the other weights sum to 1, so the layer outputs prediction
    errors (residuals) and suppresses image content. The constraint is restored by
    :meth:`constrain_` after every optimiser step.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 5) -> None:
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)
        nn.init.uniform_(self.weight, 0.0, 1.0)  # positive start: the off-centre sum is far from 0
        self.constrain_()

    @torch.no_grad()
    def constrain_(self) -> None:
        """Centre weight -1, other weights of each kernel scaled to sum to 1."""
        c = self.kernel_size[0] // 2
        w = self.weight
        w[:, :, c, c] = 0.0
        total = w.sum(dim=(1, 2, 3), keepdim=True)
        w /= torch.where(total.abs() < 1e-8, torch.full_like(total, 1e-8), total)
        w[:, :, c, c] = -1.0 / w.shape[1]


class FixedFilters(nn.Module):
    """A fixed (not trained) bank of 2-D high-pass filters applied to each input channel."""

    weight: torch.Tensor  # a buffer: saved with the model, never trained

    def __init__(self, kernels: torch.Tensor, in_channels: int) -> None:
        super().__init__()
        k = kernels.shape[-1]
        weight = kernels[:, None].repeat(1, in_channels, 1, 1) / in_channels
        self.register_buffer("weight", weight)
        self.padding = k // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.conv2d(x, self.weight, padding=self.padding)


class Truncate(nn.Module):
    """Residuals in 8-bit units, truncated at ``threshold``: softly ``T * tanh(255 r / T)`` or hard.

    Truncation keeps the detector on small residuals, where manipulation traces live, rather
    than on strong edges (the truncated linear unit of SRM/steganalysis). The soft (tanh) form
    keeps a non-zero gradient everywhere; the hard form (``hard=True``, a hard tanh) has zero
    gradient beyond the threshold and so masks part of the gradient attacks rely on.
    ``threshold <= 0`` disables truncation (residuals are only rescaled to 8-bit units).
    """

    def __init__(self, threshold: float, hard: bool = False) -> None:
        super().__init__()
        self.threshold = threshold
        self.hard = hard

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = 255.0 * x
        if self.threshold <= 0:
            return x
        if self.hard:
            return nn.functional.hardtanh(x, -self.threshold, self.threshold)
        return self.threshold * torch.tanh(x / self.threshold)


def small_cnn(in_channels: int, width: int, num_classes: int) -> nn.Sequential:
    """Four 3x3 conv-BN-ReLU blocks (three 2x2 max-pools), global average pooling, linear head."""
    widths = [in_channels, width, 2 * width, 4 * width, 4 * width]
    layers: list[nn.Module] = []
    for i in range(4):
        layers += [nn.Conv2d(widths[i], widths[i + 1], 3, padding=1), nn.BatchNorm2d(widths[i + 1]), nn.ReLU()]
        if i < 3:
            layers.append(nn.MaxPool2d(2))
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(widths[-1], num_classes)]
    return nn.Sequential(*layers)


class MedianResidual(nn.Module):
    """Median filtering residual of Chen et al. (2015): ``median_k(x) - x`` per channel.

    Computed in float inside the model (reflect padding, k x k window), so the gradient reaches
    the input: through ``-x`` everywhere and through the pixel the median selects.
    """

    def __init__(self, size: int = 3) -> None:
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.size // 2
        padded = nn.functional.pad(x, (p, p, p, p), mode="reflect")
        windows = padded.unfold(2, self.size, 1).unfold(3, self.size, 1)  # N, C, H, W, k, k
        return windows.flatten(-2).median(dim=-1).values - x


def conv_bn_tanh_pool(cin: int, cout: int, kernel: int, stride: int = 1, pool: str = "max") -> list[nn.Module]:
    """MISLnet block: convolution, batch norm, tanh, 3x3 pooling with stride 2."""
    pooling = nn.MaxPool2d(3, 2) if pool == "max" else nn.AvgPool2d(3, 2)
    return [nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2), nn.BatchNorm2d(cout), nn.Tanh(), pooling]


def scaled(width: int, scale: float) -> int:
    """A channel width scaled down for CPU training (at least 4)."""
    return max(4, round(width * scale))


class Affine(nn.Module):
    """Fixed input scaling ``a * x + b`` (e.g. [0, 1] to [-1, 1])."""

    def __init__(self, a: float, b: float) -> None:
        super().__init__()
        self.a, self.b = a, b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.a * x + self.b
