"""``python -m bench list``: the registered entries and the built-in profiles."""

from __future__ import annotations

import argparse
from typing import Any

FAMILIES = ("tasks", "detectors", "defenses", "attacks")


def add_parser(sub: Any) -> None:
    """Register ``list`` on the ``python -m bench`` parser."""
    ls = sub.add_parser("list", help="list registered tasks, detectors, defences, attacks and profiles")
    ls.add_argument("family", nargs="?", choices=[*FAMILIES, "profiles"])
    ls.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from bench.attacks import ATTACKS
    from bench.core.registry import Registry
    from bench.inputs.matrix import builtin_matrix_path, builtin_profiles, load_matrix
    from bench.tasks import TASKS
    from defenses import DEFENSES
    from detectors import DETECTORS

    family = args.family
    registries: tuple[Registry[Any], ...] = (TASKS, DETECTORS, DEFENSES, ATTACKS)
    for name, registry in zip(FAMILIES, registries, strict=True):
        if family in (None, name):
            print(f"{name}:")
            for entry_name in registry.names():
                spec = registry.resolve(entry_name)
                info = registry.entry(entry_name).info
                extra = f" [{info.parameters:,} parameters at 1 channel, 2 classes]" if name == "detectors" else ""
                print(f"  {spec!s:58s} {info.description}{extra}")
    if family in (None, "profiles"):
        print("profiles:")
        for profile in builtin_profiles():
            description = load_matrix(builtin_matrix_path(profile), train_only=True).description
            print(f"  {profile:58s} {description}")
    return 0
