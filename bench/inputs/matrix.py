"""Matrix files: which tasks x detectors x defences x attacks x epsilons to run.

A matrix is a TOML file, validated completely before anything runs; every problem is reported
as one line naming the file, the field and what is allowed. Built-in matrices live in
``bench/inputs/matrices/<profile>.toml``.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from bench.attacks import ATTACKS
from bench.core.config import DataConfig, TrainingConfig, from_table
from bench.core.devices import parse_device
from bench.core.errors import BenchError, did_you_mean
from bench.core.registry import Registry, Spec
from bench.tasks import TASKS
from defenses import DEFENSES, is_input_transform
from detectors import DETECTORS
from detectors._networks import check_network, is_network

REQUIRED = ("seed", "n_samples", "tasks", "detectors", "defenses", "attacks", "epsilons_255")
OPTIONAL = ("profile", "description", "device", "seeds", "data", "training")
ATTACK_KEYS = ("attacks", "epsilons_255")
_PROFILE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # matched in full: it names a folder
MAX_SAMPLES = 100_000  # attacked samples per cell
MAX_SEED = 2**32 - 1  # numpy's and torch's seeds alike
MAX_SEEDS = 32  # training seeds per model


@dataclass(frozen=True)
class Matrix:
    """A validated matrix: canonical specs and settings."""

    profile: str
    description: str
    seed: int
    n_samples: int
    tasks: tuple[Spec, ...]
    detectors: tuple[Spec, ...]
    defenses: tuple[Spec, ...]
    attacks: tuple[Spec, ...]
    epsilons_255: tuple[float, ...]
    data: DataConfig
    training: TrainingConfig
    file: str = ""  # the matrix file it was read from ("" when built in code); not part of any key
    # where the run computes: auto | cpu | cuda | cuda:N (bench/core/devices.py; the CLI's --device
    # overrides it); only the device kind it resolves to enters the keys
    device: str = "auto"
    # the training seeds: each model is trained once per seed (empty: once, with ``seed``). ``seed``
    # stays the data and attack seed, so every training seed is attacked on the same test patches
    seeds: tuple[int, ...] = ()

    @property
    def training_seeds(self) -> tuple[int, ...]:
        """The seeds each model is trained with (``seeds``, or ``(seed,)`` without the key)."""
        return self.seeds or (self.seed,)

    @property
    def builtin(self) -> bool:
        """Whether it was read from a built-in profile's file."""
        folder = Path(str(resources.files("bench.inputs.matrices"))).resolve()
        return bool(self.file) and Path(self.file).resolve().parent == folder

    def to_dict(self) -> dict[str, Any]:
        """Canonical, JSON-ready form (recorded in run.json)."""
        return {
            "profile": self.profile,
            "description": self.description,
            "device": self.device,
            "seed": self.seed,
            **({"seeds": list(self.seeds)} if self.seeds else {}),
            "n_samples": self.n_samples,
            **{k: [str(s) for s in getattr(self, k)] for k in ("tasks", "detectors", "defenses", "attacks")},
            "epsilons_255": list(self.epsilons_255),
            "data": dataclasses.asdict(self.data),
            "training": dataclasses.asdict(self.training),
        }


def builtin_profiles() -> list[str]:
    """Names of the matrices shipped with the package."""
    return sorted(
        p.name[: -len(".toml")] for p in resources.files("bench.inputs.matrices").iterdir() if p.name.endswith(".toml")
    )


def builtin_matrix_path(profile: str) -> Path:
    """Path of a built-in matrix, or BenchError listing the available profiles."""
    profiles = builtin_profiles()
    if profile not in profiles:
        raise BenchError(
            f"--profile {profile}: no such built-in matrix; allowed: {', '.join(profiles)}{did_you_mean(profile, profiles)}"
        )
    return Path(str(resources.files("bench.inputs.matrices") / f"{profile}.toml"))


def load_matrix(
    path: str | Path, profile: str | None = None, *, train_only: bool = False, label: str | None = None
) -> Matrix:
    """Read and validate a matrix file; ``profile`` overrides its output name.

    ``train_only`` (the zoo command) makes ``attacks`` and ``epsilons_255`` optional. ``label``
    names the file in the errors about opening it: the CLI's ``--matrix PATH`` by default
    (``bench.load_matrix``, which also takes a profile's name, passes ``matrix 'PATH'``).
    """
    path = Path(path)
    where = path.name
    label = label or f"--matrix {path}"
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BenchError(f"{label}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise BenchError(f"{label}: cannot read: {err}") from None
    except tomllib.TOMLDecodeError as err:
        raise BenchError(f"{where}: not valid TOML: {err}") from None
    if profile is not None:
        doc["profile"] = profile
    doc.setdefault("profile", path.stem)
    matrix = parse_matrix(doc, where, train_only=train_only, base=path.resolve().parent)
    return dataclasses.replace(matrix, file=str(path))


def parse_matrix(
    doc: dict[str, Any], where: str = "matrix", *, train_only: bool = False, base: str | Path | None = None
) -> Matrix:
    """Validate a matrix given as a dict (the parsed TOML).

    ``base``: the folder a trained network's relative ``path`` is read from (a matrix file's
    folder; default: the working directory); the canonical name holds the absolute path.
    """
    for key in doc:
        if key not in REQUIRED + OPTIONAL:
            allowed = REQUIRED + OPTIONAL
            raise BenchError(
                f"{where}: unknown key {key!r}; allowed keys: {', '.join(allowed)}{did_you_mean(str(key), allowed)}"
            )
    required = tuple(k for k in REQUIRED if not (train_only and k in ATTACK_KEYS))
    for key in required:
        if key not in doc:
            raise BenchError(f"{where}: missing key {key!r}; required keys: {', '.join(required)}")
    profile = doc.get("profile", "custom")
    if not isinstance(profile, str) or not _PROFILE_RE.fullmatch(profile):
        raise BenchError(
            f"{where}: profile {profile!r} is not allowed; 1 to 64 letters, digits, '.', '_' and '-', "
            "starting with a letter or digit"
        )
    description = doc.get("description", "")
    if not isinstance(description, str):
        raise BenchError(f"{where}: description must be a string")
    device = parse_device(doc.get("device", "auto"), f"{where}: device")
    seed = _integer(doc["seed"], f"{where}: seed", minimum=0, maximum=MAX_SEED)
    seeds = _seeds(doc["seeds"], f"{where}: seeds") if "seeds" in doc else ()
    n_samples = _integer(doc["n_samples"], f"{where}: n_samples", minimum=1, maximum=MAX_SAMPLES)
    tasks = _specs(doc["tasks"], TASKS, f"{where}: tasks")
    detectors = _located(_specs(doc["detectors"], DETECTORS, f"{where}: detectors"), Path(base or Path.cwd()), where)
    defenses = _specs(doc["defenses"], DEFENSES, f"{where}: defenses")
    _refuse_training_defenses(detectors, defenses, where)
    attacks = _specs(doc["attacks"], ATTACKS, f"{where}: attacks") if "attacks" in doc else ()
    epsilons = _epsilons(doc["epsilons_255"], f"{where}: epsilons_255") if "epsilons_255" in doc else ()
    for task in tasks:
        channels = TASKS.entry(task.name).info.channels
        for det in detectors:
            if channels not in DETECTORS.entry(det.name).info.channels:
                raise BenchError(
                    f"{where}: detectors: {det} does not accept {channels}-channel input of task {task}; "
                    f"it accepts {DETECTORS.entry(det.name).info.channels}"
                )
    data = from_table(DataConfig, doc.get("data"), f"{where}: [data]")
    _check_patch(data.patch, tasks, tuple(d for d in detectors if not is_network(d.name)), f"{where}: [data]")
    _check_networks(data.patch, tasks, detectors, f"{where}: detectors")
    return Matrix(
        profile=profile,
        description=description,
        seed=seed,
        n_samples=n_samples,
        tasks=tasks,
        detectors=detectors,
        defenses=defenses,
        attacks=attacks,
        epsilons_255=epsilons,
        data=data,
        training=from_table(TrainingConfig, doc.get("training"), f"{where}: [training]"),
        device=device,
        seeds=seeds,
    )


def _check_patch(patch: int, tasks: tuple[Spec, ...], detectors: tuple[Spec, ...], where: str) -> None:
    """Refuse a patch size that a selected detector cannot run on: one dry forward pass of each
    detector, in training mode (batch norm needs more than one value per channel), on one blank
    patch of every task's shape (skipped at a detector's own input size, which its tests cover)."""
    shapes = sorted({(TASKS.entry(t.name).info.channels, len(TASKS.entry(t.name).info.classes)) for t in tasks})
    for det in detectors:
        if patch == DETECTORS.entry(det.name).info.input_size:
            continue
        import torch

        for channels, classes in shapes:
            try:
                model = DETECTORS.create(det, in_channels=channels, num_classes=classes).train()
                with torch.no_grad():
                    shape = tuple(model(torch.rand(1, channels, patch, patch)).shape)
                reason = "" if shape == (1, classes) else f"its output has shape {shape}"
            except Exception as err:  # noqa: BLE001 - whatever the forward pass raised is the reason
                reason = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
            if reason:
                raise BenchError(
                    f"{where}: patch={patch} is not allowed; detector {det} cannot run on {patch}x{patch} patches "
                    f"({reason}); choose a patch size every selected detector runs on (their default: 64)"
                )


def _located(detectors: tuple[Spec, ...], base: Path, where: str) -> tuple[Spec, ...]:
    """The detectors with every trained network's ``path`` made absolute (relative: to ``base``),
    so that its canonical name names one file wherever the run is started."""
    out = []
    for det in detectors:
        path = str(det.get("path")) if is_network(det.name) else ""
        if path:
            absolute = str((base / Path(path).expanduser()).resolve())
            det = DETECTORS.spec(det.name, {**dict(det.params), "path": absolute})
            if det in out:
                raise BenchError(f"{where}: detectors: {det} is listed twice")
        out.append(det)
    return tuple(out)


def _refuse_training_defenses(detectors: tuple[Spec, ...], defenses: tuple[Spec, ...], where: str) -> None:
    """A trained network is evaluated as it is: a defence that trains the detector cannot apply to it."""
    network = next((d for d in detectors if is_network(d.name)), None)
    training = next((d for d in defenses if d.name != "none" and not is_input_transform(d)), None)
    if network is not None and training is not None:
        transforms = [n for n in DEFENSES.names() if is_input_transform(DEFENSES.resolve(n))]
        raise BenchError(
            f"{where}: defenses: {training} trains the detector, and {network.name} is a network trained elsewhere, "
            f"evaluated as it is; allowed with it: none and the input transforms ({', '.join(transforms)}); "
            "run the training defences in a matrix of their own"
        )


def _check_networks(patch: int, tasks: tuple[Spec, ...], detectors: tuple[Spec, ...], where: str) -> None:
    """Refuse a trained network that breaks the input convention on a task (detectors/_networks.py:
    one dry forward pass on a patch of the task's shape: (1, classes) finite logits)."""
    for det in detectors:
        if not is_network(det.name):
            continue
        for task in tasks:
            info = TASKS.entry(task.name).info
            check_network(det, channels=info.channels, classes=len(info.classes), patch=patch, where=where)


def _integer(value: Any, where: str, minimum: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise BenchError(f"{where}: {value!r} is not allowed; must be an integer >= {minimum} and <= {maximum}")
    return value


def _seeds(value: Any, where: str) -> tuple[int, ...]:
    allowed = f"a list of 1 to {MAX_SEEDS} distinct integers >= 0 and <= {MAX_SEED}"
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_SEEDS:
        raise BenchError(f"{where}: {value!r} is not allowed; must be {allowed}")
    seeds = tuple(_integer(v, f"{where}[{i}]", minimum=0, maximum=MAX_SEED) for i, v in enumerate(value))
    if len(set(seeds)) != len(seeds):
        raise BenchError(f"{where}: {value!r} lists a seed twice; must be {allowed}")
    return seeds


def _specs(value: Any, registry: Registry[Any], where: str) -> tuple[Spec, ...]:
    if not isinstance(value, list) or not value:
        raise BenchError(f"{where}: must be a non-empty list of names; allowed: {', '.join(registry.names())}")
    specs = []
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise BenchError(f"{where}[{i}]: {item!r} is not a string; allowed: {', '.join(registry.names())}")
        spec = registry.resolve(item, f"{where}[{i}]")
        if spec in specs:
            raise BenchError(f"{where}[{i}]: {spec} is listed twice")
        specs.append(spec)
    return tuple(specs)


def _epsilons(value: Any, where: str) -> tuple[float, ...]:
    allowed = "epsilons are numbers > 0 and <= 255, in 8-bit units (eps/255)"
    if not isinstance(value, list) or not value:
        raise BenchError(f"{where}: must be a non-empty list; {allowed}")
    out: list[float] = []
    for i, e in enumerate(value):
        if isinstance(e, bool) or not isinstance(e, (int, float)) or not 0 < e <= 255:
            raise BenchError(f"{where}[{i}]: {e!r} is not allowed; {allowed}")
        if float(e) in out:
            raise BenchError(f"{where}[{i}]: {e!r} is listed twice")
        out.append(float(e))
    return tuple(sorted(out))
