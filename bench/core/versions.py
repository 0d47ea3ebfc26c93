"""Versions of the packages that determine the numbers (recorded in run.json and cache keys)."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version

PACKAGES = (
    "forensic-robustness-bench",
    "torch",
    "numpy",
    "scipy",
    "pandas",
    "scikit-image",
    "pillow",
    "adversarial-robustness-toolbox",
    "foolbox",
    "eagerpy",
    "matplotlib",
    "seaborn",
)


def package_version(name: str) -> str:
    """Installed version of a distribution, or 'not installed'."""
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def versions() -> dict[str, str]:
    """Python and package versions."""
    return {"python": platform.python_version(), **{p: package_version(p) for p in PACKAGES}}
