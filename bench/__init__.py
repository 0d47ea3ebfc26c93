"""forensic-robustness bench: adversarial robustness of image-forensics detectors.

Public API (bench/api.py; imports are lazy so that ``python -m bench --help`` stays fast)::

    import bench
    matrix = bench.load_matrix("smoke")               # a built-in profile, or the path of a TOML file
    table = bench.run_matrix(matrix)                  # tidy DataFrame, one row per cell x epsilon x variant
    results = bench.read_results("results/smoke")     # matrix, samples, models and transfer tables
    bench.list_entries("attacks")                     # what a matrix can name

``bench.api.run`` returns everything a run produced (tables, probes, transfer, statistics).
docs/notebook.md walks through it.

The package is layered (each layer imports only the ones below it; a test checks the contract in
pyproject.toml): ``cli`` -> ``api`` -> ``studies`` -> ``outputs`` | ``run`` -> ``inputs`` ->
the entry families ``attacks`` | ``tasks`` | ``detectors`` | ``defenses`` -> ``core``.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "BenchError",
    "RunTables",
    "Runner",
    "evaluate",
    "list_entries",
    "load_matrix",
    "parse_matrix",
    "read_results",
    "run_matrix",
]
__version__ = "0.1.0"

_LAZY = {
    "BenchError": "bench.core.errors",
    "evaluate": "bench.evaluation",  # a trained network in one call
    "Runner": "bench.run.execute",
    "run_matrix": "bench.api",
    "load_matrix": "bench.api",
    "read_results": "bench.api",
    "RunTables": "bench.api",
    "list_entries": "bench.api",
    "parse_matrix": "bench.inputs.matrix",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'bench' has no attribute {name!r}")
