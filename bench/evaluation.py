"""Bring your own detector: evaluate a trained network from Python, as RobustBench's ``benchmark`` does.

``evaluate(model, task=..., attacks=[...], epsilons_255=[...])`` builds a one-detector matrix with
the ``torchscript`` entry (detectors/_networks.py) and runs it like any matrix (bench/api.py):
the network is not trained, its clean accuracy is measured on the task's test split, every
attack and the suite's reference attacks run on it, and the tidy table comes back.

A module given in memory is exported to TorchScript (``torch.jit.script``, else
``torch.jit.trace`` on a patch of the task's shape) and written once into the cache folder,
under a digest of the exported program (its code and every parameter and buffer): TorchScript
archives differ from one export to the next (mangled names, a random id), so the file is named
by what it computes, and an unchanged module served from the cache on the next call. The key of
every result holds the SHA-256 of that file, as for a file given by path.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.api import run
from bench.core.cache import atomic_write_bytes, check_writable
from bench.core.config import DataConfig, from_table
from bench.core.errors import BenchError
from bench.inputs.matrix import parse_matrix
from bench.tasks import TASKS

if TYPE_CHECKING:
    import pandas as pd
    import torch
    from torch import nn

    from bench.run.execute import Progress

_MANGLED = re.compile(r"___torch_mangle_\d+")


def evaluate(
    model: nn.Module | str | Path,
    *,
    task: str,
    attacks: Sequence[str],
    epsilons_255: Sequence[float],
    defenses: Sequence[str] = ("none",),
    n_samples: int = 500,
    seed: int = 0,
    data: Mapping[str, Any] | None = None,
    profile: str = "evaluate",
    images: str | Path | None = None,
    results_dir: str | Path = "results",
    cache_dir: str | Path | None = None,
    device: str | None = None,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Evaluate a trained network and return the tidy table (one row per attack x epsilon x image
    variant, plus the ensemble rows), as :func:`bench.api.run_matrix` does for a matrix.

    Args:
        model: a ``torch.nn.Module`` (images in [0, 1] of shape (N, C, H, W) in, logits out), or
            the path of a TorchScript file.
        task: the task's canonical name (``median5``); its test split is what is attacked.
        attacks: attack names (``art.pgd``, ``foolbox.fgsm[...]``), as in a matrix.
        epsilons_255: the budgets in 8-bit units.
        defenses: ``none`` and input transforms (``jpeg[quality=75]``); defences that train a
            detector do not apply to a network trained elsewhere.
        n_samples, seed, data: as the matrix keys of the same names (``data``: the ``[data]`` table).
        profile: the results folder's name under ``results_dir``.
        images, results_dir, cache_dir, device, progress: as for :func:`bench.api.run`.

    Raises BenchError (one line) for a value that is not allowed, a module that cannot be
    exported, or a network that breaks the input convention (checked by a dry forward pass).
    """
    cache = Path(cache_dir) if cache_dir is not None else Path(results_dir) / ".cache"
    doc: dict[str, Any] = {
        "profile": profile,
        "seed": seed,
        "n_samples": n_samples,
        "tasks": [task],
        "defenses": list(defenses),
        "attacks": list(attacks),
        "epsilons_255": list(epsilons_255),
        **({"data": dict(data)} if data is not None else {}),
    }
    task_spec = TASKS.resolve(task, "evaluate: task")
    patch = from_table(DataConfig, dict(data) if data is not None else None, "evaluate: data").patch
    channels: int = TASKS.entry(task_spec.name).info.channels
    path = _network_file(model, cache, (1, channels, patch, patch))
    matrix = parse_matrix({**doc, "detectors": [f"torchscript[path={path}]"]}, "evaluate")
    return run(matrix, images=images, results_dir=results_dir, cache_dir=cache, device=device, progress=progress).table


def _network_file(model: Any, cache: Path, shape: tuple[int, int, int, int]) -> Path:
    """The TorchScript file a ``model`` argument names, or the file it is exported to in the cache."""
    if isinstance(model, (str, Path)):
        path = Path(model).expanduser().resolve()
    else:
        path = _exported(model, cache, shape)
    if "," in str(path) or "]" in str(path):
        raise BenchError(
            f"{path}: a path with ',' or ']' cannot be named in a detector entry; move the file or the cache"
        )
    return path


def _exported(model: Any, cache: Path, shape: tuple[int, int, int, int]) -> Path:
    """A module exported to TorchScript into ``<cache>/networks/<program digest>.pt`` (written once)."""
    import torch
    from torch import nn

    if not isinstance(model, nn.Module):
        raise BenchError(
            f"model: {type(model).__name__} is not allowed; a torch.nn.Module or the path of a TorchScript file"
        )
    scripted = export(model, shape)
    folder = cache / "networks"
    path = (folder / f"{program_digest(scripted)}.pt").resolve()
    if not path.is_file():  # written once: the file's bytes, and with them the keys, stay as they are
        check_writable(folder, "cache_dir")
        buffer = io.BytesIO()
        torch.jit.save(scripted, buffer)
        atomic_write_bytes(path, buffer.getvalue())
    return path


def export(model: nn.Module, shape: tuple[int, ...]) -> torch.jit.ScriptModule:
    """``model`` in eval mode as TorchScript: scripted when TorchScript compiles it, else traced on
    one random patch of ``shape`` (data-dependent control flow is then fixed to that patch's path).
    The module's own mode is restored."""
    import torch

    if isinstance(model, torch.jit.ScriptModule):
        return model
    was_training = model.training
    model.eval()
    try:
        try:
            scripted: torch.jit.ScriptModule = torch.jit.script(model)
        except Exception:  # noqa: BLE001 - not scriptable (postponed annotations, Python-only code): trace it
            example = torch.rand(shape, generator=torch.Generator().manual_seed(0))
            try:
                scripted = torch.jit.trace(model, example)  # type: ignore[no-untyped-call]
            except Exception as err:  # noqa: BLE001 - neither works: the module cannot be evaluated here
                first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                raise BenchError(
                    f"model: cannot export {type(model).__name__} to TorchScript ({first[:160]}); "
                    "export it yourself and pass the file's path"
                ) from None
    finally:
        model.train(was_training)
    return scripted


def program_digest(scripted: torch.jit.ScriptModule) -> str:
    """A digest of what a TorchScript module computes: each submodule's code (mangled names
    removed: they count exports within a process) and constants, and every parameter and buffer."""
    h = hashlib.sha256()
    for name, module in scripted.named_modules():
        code, constants = module.code_with_constants
        h.update(f"module {name}\n{_MANGLED.sub('', code)}\n".encode())
        for key, value in sorted(constants.const_mapping.items()):
            h.update(f"constant {key} {value!r}\n".encode() if not hasattr(value, "numpy") else _tensor(key, value))
    for kind, tensors in (("parameter", scripted.named_parameters()), ("buffer", scripted.named_buffers())):
        for key, tensor in tensors:
            h.update(f"{kind} {key}\n".encode() + _tensor(key, tensor))
    return h.hexdigest()


def _tensor(key: str, tensor: torch.Tensor) -> bytes:
    import torch

    data = tensor.detach().cpu().contiguous()
    return f"{key} {data.dtype} {tuple(data.shape)}\n".encode() + data.flatten().view(torch.uint8).numpy().tobytes()
