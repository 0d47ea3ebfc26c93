"""forensic-robustness bench: adversarial robustness of image-forensics detectors.

Public API (imports are lazy so that ``python -m bench --help`` stays fast)::

    from bench import load_matrix, run_matrix
    table = run_matrix(load_matrix("my.toml"))   # tidy DataFrame, one row per cell x epsilon
"""

from __future__ import annotations

from typing import Any

__all__ = ["BenchError", "Runner", "load_matrix", "parse_matrix", "run_matrix"]
__version__ = "0.1.0"

_LAZY = {
    "BenchError": "bench.errors",
    "Runner": "bench.runner",
    "run_matrix": "bench.runner",
    "load_matrix": "bench.matrix",
    "parse_matrix": "bench.matrix",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'bench' has no attribute {name!r}")
