"""Torch's intra-op thread count of a block: the run's count for its cells, probes and transfer
pairs (``Runner.threads``, in their keys; docs/design.md, "Thread count").

Kept apart from bench/run/training.py on purpose: that module's code is part of every model key,
and training has its own fixed count there (``training_threads``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the block with torch's intra-op thread count set to ``count``, then restore it."""
    import torch

    before = torch.get_num_threads()
    if before != count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


__all__ = ["torch_threads"]
