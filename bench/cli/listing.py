"""``python -m bench list``: the registered entries and the built-in profiles.

``--markdown`` prints the table of README.md's "What is registered" (one row per family, every
entry in its canonical form with its defaults), the block between the README's registry markers.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.core.registry import Registry

FAMILIES = ("tasks", "detectors", "defenses", "attacks")
BEGIN, END = "<!-- registry:begin -->", "<!-- registry:end -->"


def add_parser(sub: Any) -> None:
    """Register ``list`` on the ``python -m bench`` parser."""
    ls = sub.add_parser("list", help="list registered tasks, detectors, defences, attacks and profiles")
    ls.add_argument("family", nargs="?", choices=[*FAMILIES, "profiles"])
    ls.add_argument("--markdown", action="store_true", help="print the README's table of registered entries")
    ls.set_defaults(handler=run)


def registries() -> dict[str, Registry[Any]]:
    """The four registries by family name."""
    from bench.attacks import ATTACKS
    from bench.tasks import TASKS
    from defenses import DEFENSES
    from detectors import DETECTORS

    return {"tasks": TASKS, "detectors": DETECTORS, "defenses": DEFENSES, "attacks": ATTACKS}


def markdown_table() -> str:
    """One row per family: every entry's canonical name with its default parameters."""
    lines = [BEGIN, "| family | entries (canonical name with the defaults) |", "|---|---|"]
    for family, registry in registries().items():
        names = ", ".join(f"`{registry.resolve(name)}`" for name in registry.names())
        lines.append(f"| {family} | {names} |")
    return "\n".join([*lines, END])


def run(args: argparse.Namespace) -> int:
    from bench.inputs.matrix import builtin_matrix_path, builtin_profiles, load_matrix

    if args.markdown:
        print(markdown_table())
        return 0
    family = args.family
    for name, registry in registries().items():
        if family in (None, name):
            print(f"{name}:")
            for entry_name in registry.names():
                spec = registry.resolve(entry_name)
                info = registry.entry(entry_name).info
                extra = (
                    f" [{info.parameters:,} parameters at 1 channel, 2 classes]"
                    if name == "detectors" and info.parameters
                    else ""
                )
                print(f"  {spec!s:58s} {info.description}{extra}")
    if family in (None, "profiles"):
        print("profiles:")
        for profile in builtin_profiles():
            description = load_matrix(builtin_matrix_path(profile), train_only=True).description
            print(f"  {profile:58s} {description}")
    return 0
