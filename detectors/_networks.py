"""Networks trained elsewhere: loading them safely, their digests and the check of their input convention.

A *network* entry (``torchscript[path=...]``, ``state-dict[factory=...,path=...]``) is a detector
the suite evaluates without training it. Its file is loaded without unpickling arbitrary objects:
a TorchScript archive through ``torch.jit.load`` (TorchScript's own restricted format), a state
dict through ``torch.load(weights_only=True)`` into the module a factory builds. What a network
computes is its file (and its factory's code), so the file's SHA-256 is part of its model key
(:func:`network_digest`, bench/run/plan.py). Every refusal is one line (BenchError, exit 2).
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import inspect
import io
import math
import pickle
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.core.errors import BenchError
from bench.core.fingerprint import fingerprint
from detectors import DETECTORS, DetectorInfo

if TYPE_CHECKING:
    import torch
    from torch import nn

    from bench.core.registry import Spec

# ``package.module:function``: a factory imported from the user's code (not a registered detector)
_IMPORTABLE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_FACTORY_SPEC = re.compile(r"^\s*([^\[\]\s]+)\s*(?:\[(.*)\])?\s*$")


@dataclass(frozen=True)
class NetworkInfo(DetectorInfo):
    """A detector entry whose factory loads a trained network from a file (never trained here)."""


def is_network(name: str) -> bool:
    """Whether the detector entry ``name`` loads a trained network (evaluated without training)."""
    return isinstance(DETECTORS.entry(name).info, NetworkInfo)


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes (BenchError when it cannot be read)."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError as err:
        raise BenchError(f"{path}: cannot read the network file ({err.strerror or type(err).__name__})") from None


def network_digest(spec: Spec) -> str:
    """What a network entry computes, as a hash: its file's SHA-256 and, for a state dict, the
    factory's code (a registered detector's entry fingerprint, an imported module's fingerprint)."""
    params = dict(spec.params)
    parts = [file_digest(params["path"])]
    if "factory" in params:
        parts.append(factory_fingerprint(str(params["factory"])))
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


# -- TorchScript ----------------------------------------------------------------------------------


def load_torchscript(path: str) -> nn.Module:
    """A TorchScript file as a detector (on the CPU, eval mode). BenchError (one line) when the
    file is missing or is not a TorchScript archive (a pickled module, a state dict, anything else)."""
    data = _read(path)
    return _scripted(data, path)


def _scripted(data: bytes, path: str) -> nn.Module:
    import torch

    try:
        module = torch.jit.load(io.BytesIO(data), map_location="cpu")  # type: ignore[no-untyped-call]
    except Exception as err:  # noqa: BLE001 - whatever torch says, the file is not a TorchScript archive
        if _is_pickle_archive(data):
            raise BenchError(
                f"{path}: holds a torch.save pickle (a pickled module or a state dict), not TorchScript, and pickles "
                "are never loaded: export with torch.jit.script or torch.jit.trace and torch.jit.save, or give a "
                "state dict as state-dict[factory=...,path=...]"
            ) from None
        raise BenchError(
            f"{path}: not a TorchScript file ({_first_line(err)}); export the network with "
            "torch.jit.script(model) or torch.jit.trace(model, example) and torch.jit.save"
        ) from None
    return _wrap(data, module)


def _wrap(data: bytes, module: Any) -> nn.Module:
    network: nn.Module = _network_class()(data, module)
    return network.eval()


@functools.cache
def _network_class() -> type[nn.Module]:
    """The wrapper class (made once, on first use: torch is imported only when a network loads)."""
    import torch
    from torch import nn

    class TorchScriptNetwork(nn.Module):
        """A loaded TorchScript module in a plain module: the harness copies detectors
        (``copy.deepcopy``) and freezes their parameters, which ScriptModules refuse, so a copy
        loads the archive again and takes the current weights."""

        def __init__(self, archive: bytes, scripted: Any) -> None:
            super().__init__()
            self._archive = archive
            self.net = scripted

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.net(x)
            return out

        def __deepcopy__(self, memo: dict[int, Any]) -> nn.Module:
            scripted = torch.jit.load(io.BytesIO(self._archive), map_location="cpu")  # type: ignore[no-untyped-call]
            copy = TorchScriptNetwork(self._archive, scripted)
            copy.load_state_dict(self.state_dict())
            copy.to(next(self.parameters(), torch.empty(0)).device)
            for mine, theirs in zip(self.parameters(), copy.parameters(), strict=True):
                theirs.requires_grad_(mine.requires_grad)
            return copy.train(self.training)

    return TorchScriptNetwork


# -- state dicts ----------------------------------------------------------------------------------


def load_state_dict(path: str, factory: str, *, in_channels: int, num_classes: int) -> nn.Module:
    """A weights-only state dict loaded into the module ``factory`` builds for the task's channels
    and classes (eval mode). BenchError (one line) for a file that is not a weights-only state
    dict (a pickled object is never unpickled) or whose tensors do not fit the module."""
    import torch

    if not factory:
        raise BenchError("factory is empty; name the module's factory: factory=DETECTOR or package.module:function")
    data = _read(path)
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # the weights-only unpickler met an object it does not allow
        raise BenchError(
            f"{path}: holds pickled Python objects (torch.save(model)?), and those are never loaded: save "
            "model.state_dict() with torch.save, or export TorchScript and use torchscript[path=...]"
        ) from None
    except Exception as err:  # noqa: BLE001 - not a file torch.save wrote
        raise BenchError(
            f"{path}: not a weights-only state dict ({_first_line(err)}); save model.state_dict() with torch.save"
        ) from None
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BenchError(
            f"{path}: holds a {type(state).__name__}, not a state dict of tensors; save model.state_dict() with torch.save"
        )
    model = build_factory(factory, in_channels=in_channels, num_classes=num_classes)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise BenchError(f"{path}: does not fit factory {factory}: {_mismatch(err)}") from None
    return model.eval()


def check_factory(factory: str) -> str | None:
    """Why ``factory`` names no factory (None when it is well-formed): a registered detector's name
    with its parameters separated by ';' (``srm[width=8;truncate=3.0]``), or ``package.module:function``."""
    if _IMPORTABLE.match(factory):
        return None
    match = _FACTORY_SPEC.match(factory)
    if not factory or match is None:
        return f"factory={factory!r} is neither a registered detector nor package.module:function"
    name = match.group(1)
    if name not in DETECTORS.names() or is_network(name):
        trained = [n for n in DETECTORS.names() if not is_network(n)]
        return f"factory={factory!r}: no such registered detector; allowed: {', '.join(trained)} or package.module:function"
    return None


def _registered(factory: str) -> Spec:
    match = _FACTORY_SPEC.match(factory)
    assert match is not None
    body = (match.group(2) or "").replace(";", ",")
    return DETECTORS.resolve(f"{match.group(1)}[{body}]" if body else match.group(1), f"factory {factory}")


def factory_fingerprint(factory: str) -> str:
    """The code of a factory, as a hash: the registered entry's fingerprint and canonical name, or
    the imported module's fingerprint (its code and the project modules it imports)."""
    if _IMPORTABLE.match(factory):
        module, _, function = factory.partition(":")
        try:
            return f"{module}:{function}:{fingerprint(module)}"
        except ValueError:
            raise BenchError(f"factory {factory}: no source file for module {module!r}") from None
    spec = _registered(factory)
    return f"{spec}:{DETECTORS.entry(spec.name).fingerprint}"


def build_factory(factory: str, *, in_channels: int, num_classes: int) -> nn.Module:
    """The untrained module a factory builds for the task's channels and classes."""
    if not _IMPORTABLE.match(factory):
        model: nn.Module = DETECTORS.create(_registered(factory), in_channels=in_channels, num_classes=num_classes)
        return model
    module_name, _, function = factory.partition(":")
    try:
        make = getattr(importlib.import_module(module_name), function)
    except (ImportError, AttributeError) as err:
        raise BenchError(f"factory {factory}: cannot import it ({_first_line(err)})") from None
    accepted = inspect.signature(make).parameters
    context = {k: v for k, v in (("in_channels", in_channels), ("num_classes", num_classes)) if k in accepted}
    built: nn.Module = make(**context)
    return built


# -- the input convention ---------------------------------------------------------------------------


def check_network(spec: Spec, *, channels: int, classes: int, patch: int, where: str) -> None:
    """Refuse, in one line, a network that does not follow the suite's convention: images in
    [0, 1] of shape (N, channels, patch, patch) in, (N, classes) finite logits out. One dry forward
    pass in eval mode on one random patch; outputs that look like probabilities (in [0, 1],
    summing to 1) are refused too, as the attacks' losses need logits."""
    import torch

    try:
        model = DETECTORS.create(spec, in_channels=channels, num_classes=classes).eval()
    except BenchError as err:
        raise BenchError(f"{where}: {spec.name}: {err}") from None
    except Exception as err:  # noqa: BLE001 - a user's factory failed: its message is the reason
        raise BenchError(f"{where}: {spec.name} {_path(spec)}: cannot build it ({_first_line(err)})") from None
    shape = (1, channels, patch, patch)
    try:
        with torch.no_grad():
            out = model(torch.rand(shape, generator=torch.Generator().manual_seed(0)))
    except Exception as err:  # noqa: BLE001 - whatever the forward pass raised is the reason
        raise BenchError(
            f"{where}: {spec.name} {_path(spec)}: its forward pass on a {shape} batch of images in [0, 1] failed "
            f"({_first_line(err)})"
        ) from None
    expected = (1, classes)
    if not isinstance(out, torch.Tensor):
        got = f"a {type(out).__name__}"
        if isinstance(out, (tuple, list)):
            got += f" of {len(out)} outputs"
        raise BenchError(
            f"{where}: {spec.name} {_path(spec)} returns {got}; a detector returns one tensor of "
            f"{expected[1]} logits per image"
        )
    if tuple(out.shape) != expected:
        raise BenchError(
            f"{where}: {spec.name} {_path(spec)} returns shape {tuple(out.shape)} on a {shape} batch; the task has "
            f"{classes} classes, so a detector returns (N, {classes}) logits"
        )
    values = out.double()
    if not bool(torch.isfinite(values).all()):
        raise BenchError(f"{where}: {spec.name} {_path(spec)} returns non-finite logits on a patch in [0, 1]")
    if bool(((values >= 0) & (values <= 1)).all()) and math.isclose(float(values.sum()), 1.0, abs_tol=1e-5):
        raise BenchError(
            f"{where}: {spec.name} {_path(spec)} returns probabilities (in [0, 1], summing to 1); the attacks need "
            "logits: export the network without its softmax"
        )


# -- helpers ----------------------------------------------------------------------------------------


def _read(path: str) -> bytes:
    if not path:
        raise BenchError("path is empty; give the network's file: path=FILE")
    file = Path(path)
    if not file.is_file():
        raise BenchError(f"{path}: no such network file")
    try:
        return file.read_bytes()
    except OSError as err:
        raise BenchError(f"{path}: cannot read the network file ({err.strerror or type(err).__name__})") from None


def _path(spec: Spec) -> str:
    return str(dict(spec.params).get("path", ""))


def _is_pickle_archive(data: bytes) -> bool:
    """Whether ``data`` is a torch.save archive (a pickle in a zip file) rather than TorchScript."""
    try:
        names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    except zipfile.BadZipFile:
        return data[:1] == b"\x80"  # a pickle of the legacy format (protocol 2 and later)
    has = {name.partition("/")[2] for name in names}
    return "data.pkl" in has and "constants.pkl" not in has


def _first_line(err: BaseException) -> str:
    """The start of an exception's message: its first sentence, without terminal escapes, at most 120 characters."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err)).strip()
    first = text.splitlines()[0].split(". ")[0] if text else ""
    first = first if len(first) <= 120 else first[:117] + "..."
    return f"{type(err).__name__}: {first}" if first else type(err).__name__


def _mismatch(err: RuntimeError) -> str:
    """The first specific problem of a load_state_dict error (size mismatch, missing or unexpected keys)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    specific = [line for line in lines[1:] if line.startswith(("size mismatch", "Missing key", "Unexpected key"))]
    text = (specific or lines or [type(err).__name__])[0]
    return text if len(text) <= 240 else text[:237] + "..."
