"""forensic-robustness bench: adversarial robustness of image-forensics detectors.

Public API (imports are lazy so that ``python -m bench --help`` stays fast)::

    from bench import load_matrix, run_matrix
    table = run_matrix(load_matrix("my.toml"))   # tidy DataFrame, one row per cell x epsilon

``bench.api.run`` returns everything a run produced (tables, probes, transfer, statistics).

The package is layered (each layer imports only the ones below it; a test checks the contract in
pyproject.toml): ``cli`` -> ``api`` -> ``studies`` -> ``outputs`` | ``run`` -> ``inputs`` ->
the entry families ``attacks`` | ``tasks`` | ``detectors`` | ``defenses`` -> ``core``.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["BenchError", "Runner", "evaluate", "load_matrix", "parse_matrix", "run_matrix"]
__version__ = "0.1.0"

_LAZY = {
    "BenchError": "bench.core.errors",
    "evaluate": "bench.evaluation",  # a trained network in one call
    "Runner": "bench.run.execute",
    "run_matrix": "bench.api",
    "load_matrix": "bench.inputs.matrix",
    "parse_matrix": "bench.inputs.matrix",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'bench' has no attribute {name!r}")
