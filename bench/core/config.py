"""Typed settings tables of a matrix file ([data], [training]) with validation.

Each setting is a dataclass field whose type may carry checks (``Annotated[int, at_least(1)]``);
the same Param machinery that types registry parameters validates them, so a bad value gets
the same one-line error naming the field and what is allowed.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from bench.core.errors import BenchError
from bench.core.registry import Check, Param, at_least, at_most, greater_than, less_than

C = TypeVar("C")


def _fields(cls: type) -> dict[str, Param]:
    hints = typing.get_type_hints(cls, include_extras=True)
    out = {}
    for f in dataclasses.fields(cls):
        hint, checks = hints[f.name], tuple[Check, ...]()
        if typing.get_origin(hint) is Annotated:
            hint, *extra = typing.get_args(hint)
            checks = tuple(c for c in extra if isinstance(c, Check))
        out[f.name] = Param(f.name, f.name, hint, f.default, checks)
    return out


def from_table(cls: type[C], table: Any, where: str) -> C:
    """Build settings dataclass ``cls`` from a TOML table, validating every key and value."""
    if table is None:
        return cls()
    if not isinstance(table, dict):
        raise BenchError(f"{where}: must be a table of settings")
    params = _fields(cls)
    for key in table:
        if key not in params:
            raise BenchError(f"{where}: unknown key {key!r}; allowed: {', '.join(params)}")
    return cls(**{k: params[k].coerce(v, where, strict=True) for k, v in table.items()})


@dataclass(frozen=True)
class DataConfig:
    """How patches are cut from the pristine photographs (part of the dataset's cache key).

    Locations where the manipulation changes fewer than ``min_changed`` of the pixels are
    dropped from every split: there the classes are (nearly) the same image, so no detector
    can tell them apart (e.g. saturated sky or flat black borders under a median filter).
    """

    patch: Annotated[int, at_least(8), at_most(256)] = 64
    train_stride: Annotated[int, at_least(1), at_most(4096)] = 32
    eval_stride: Annotated[int, at_least(1), at_most(4096)] = 64
    max_train_per_photo: Annotated[int, at_least(1), at_most(1_000_000)] = 400
    max_eval_per_photo: Annotated[int, at_least(1), at_most(1_000_000)] = 150
    max_train_locations: Annotated[int, at_least(1), at_most(10_000_000)] = 8000
    max_eval_locations: Annotated[int, at_least(1), at_most(10_000_000)] = 1500
    min_changed: Annotated[float, at_least(0.0), at_most(1.0)] = 0.05
    val_fraction: Annotated[float, greater_than(0.0), less_than(1.0)] = 0.125
    test_fraction: Annotated[float, greater_than(0.0), less_than(1.0)] = 0.25


@dataclass(frozen=True)
class TrainingConfig:
    """Optimiser settings shared by every detector x defence (part of each model's cache key).

    Adam with a one-cycle learning-rate schedule; the checkpoint with the best validation
    accuracy is kept (early stopping by selection, deterministic for a fixed seed).
    """

    epochs: Annotated[int, at_least(1), at_most(1_000)] = 15
    batch_size: Annotated[int, at_least(1), at_most(65_536)] = 64
    lr: Annotated[float, greater_than(0.0)] = 1e-3
    weight_decay: Annotated[float, at_least(0.0)] = 0.0
    augment: bool = True
    max_train_patches: Annotated[int, at_least(0), at_most(10_000_000)] = 0  # 0: all; smoke profiles train on a subset
