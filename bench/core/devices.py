"""Torch devices: the ``--device`` / matrix ``device`` setting, checked and resolved, and moving a
detector to a device without touching the caller's copy.

Syntax is checked by :func:`parse_device` without importing torch (the CLI refuses bad input
before any heavy import); :func:`resolve_device` asks torch what this machine has. Stages take a
keyword-only ``device`` (``None``: the CPU, or wherever the model already is) and return numpy
arrays on the CPU whatever the device.
"""

from __future__ import annotations

import copy
import os
import re
from typing import TYPE_CHECKING

from bench.core.errors import BenchError

if TYPE_CHECKING:
    import torch
    from torch import nn

DEVICES = ("auto", "cpu", "cuda", "cuda:N")  # what parse_device accepts (N: a CUDA device index)
_DEVICE_RE = re.compile(r"auto|cpu|cuda(?::(0|[1-9][0-9]{0,5}))?")


def parse_device(text: str, where: str) -> str:
    """The canonical form of a device setting ("auto", "cpu", "cuda" or "cuda:N"); syntax only.

    Raises BenchError, one line prefixed by ``where``, for anything else.
    """
    if not isinstance(text, str):
        raise BenchError(f"{where}: {text!r} is not a device; allowed: {', '.join(DEVICES)}")
    match = _DEVICE_RE.fullmatch(text.lower())
    if match is None:
        shown = text if text.isprintable() and text.strip() == text and text else repr(text)
        raise BenchError(f"{where} {shown}: not a device; allowed: {', '.join(DEVICES)}")
    return match.group(0)


def resolve_device(text: str, where: str = "--device") -> torch.device:
    """The torch device of a setting on this machine: ``auto`` is the current CUDA device when torch
    sees one, else the CPU. Raises BenchError (one line) for a CUDA device torch cannot use here."""
    canonical = parse_device(text, where)
    import torch

    if canonical == "cpu":
        return torch.device("cpu")
    available = torch.cuda.is_available()
    if canonical == "auto":
        return torch.device("cuda", torch.cuda.current_device()) if available else torch.device("cpu")
    if not available:
        raise BenchError(
            f"{where} {canonical}: torch sees no CUDA device on this machine (CPU build or no GPU); "
            "allowed here: auto, cpu"
        )
    count = torch.cuda.device_count()
    index = torch.cuda.current_device() if canonical == "cuda" else int(canonical.split(":")[1])
    if index >= count:
        allowed = ", ".join(["auto", "cpu", "cuda", *(f"cuda:{i}" for i in range(count))])
        raise BenchError(
            f"{where} {canonical}: torch sees {count} CUDA device{'s' if count != 1 else ''} on this machine "
            f"(cuda:0 to cuda:{count - 1}); allowed here: {allowed}"
        )
    return torch.device("cuda", index)


def device_kind(device: torch.device | str) -> str:
    """The kind of a device, "cpu" or "cuda" (what enters the model keys: the index does not)."""
    kind = device if isinstance(device, str) else device.type
    kind = kind.split(":")[0]
    if kind not in ("cpu", "cuda"):
        raise ValueError(f"device {device!s}: unsupported kind {kind!r}; allowed: cpu, cuda")
    return kind


def model_device(model: nn.Module) -> torch.device:
    """Where a model's weights are (the CPU for a model without parameters or buffers)."""
    import torch

    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def on_device(model: nn.Module, device: torch.device | None) -> nn.Module:
    """The model on ``device``: the model itself when it is there already (always for ``None``),
    else a copy moved there, so that the caller's model (the store's, on the CPU) stays put."""
    if device is None:
        return model
    tensors = (*model.parameters(), *model.buffers())
    if all(t.device == device for t in tensors):
        return model
    moved: nn.Module = copy.deepcopy(model).to(device)
    return moved


def deterministic_cuda() -> None:
    """Ask cuBLAS for its deterministic workspace (before CUDA starts in this process): with
    ``torch.use_deterministic_algorithms`` a GPU run then repeats its numbers. No effect on the CPU."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def deterministic_algorithms() -> None:
    """Make torch choose deterministic kernels (a warning where an operation has none).

    What ``torch.use_deterministic_algorithms(True, warn_only=True)`` does for eager execution:
    the public function also imports ``torch._inductor`` to set the compiler's flag, which takes
    about as long as importing torch itself, and the suite compiles nothing (``python -X
    importtime -m bench run ...`` shows the import; a warm rerun of a matrix is mostly start-up).
    """
    import torch

    setter = getattr(torch._C, "_set_deterministic_algorithms", None)
    if setter is None:  # another torch: the public function
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        setter(True, warn_only=True)
