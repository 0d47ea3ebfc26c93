"""glibc's allocator set for torch on the CPU: no trimming of freed memory, no mmap below 32 MiB.

glibc returns memory to the system as soon as the top of its heap holds more than the trim
threshold free, and serves every allocation above the mmap threshold with a fresh mapping; both
thresholds start small (128 KiB) and only grow as the process frees large blocks. A fresh
process training or attacking a detector allocates and frees the same tensors (megabytes) at
every step, so until the thresholds have grown every step maps and zeroes its memory anew: page
faults, not arithmetic. A process that has run a while is fast; a fresh one - a serial run's
first training, every worker of a Dask cluster - pays (docs/design.md, Scale-out, has the
measurements). :func:`tune_malloc` sets the thresholds once, at their grown values, with glibc's
``mallopt``: the memory a process frees stays with it for its next step.

Numbers do not change (where memory comes from changes no arithmetic). The settings are left
alone where the environment sets any of glibc's ``MALLOC_*_`` variables or preloads another
allocator (the user's choice), and where there is no glibc (macOS, musl: nothing happens).
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD = -1  # mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 2**20  # glibc's largest allowed value on 64-bit (HEAP_MAX_SIZE / 2)
TRIM_THRESHOLD = 256 * 2**20  # free memory at the top of the heap kept before any is returned
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "LD_PRELOAD")

_tuned: bool | None = None  # per process: None until tried


def tune_malloc() -> bool:
    """Set glibc's mmap and trim thresholds for this process (once); whether they are set."""
    global _tuned
    if _tuned is not None:
        return _tuned
    _tuned = False
    if not sys.platform.startswith("linux") or any(os.environ.get(name) for name in USER_SETTINGS):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own C library
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _tuned = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    return _tuned


def release_free_memory() -> None:
    """Hand the memory glibc holds free back to the system (``malloc_trim(0)``), where
    :func:`tune_malloc` tuned the allocator. Called after each computed cell and training: with
    the trim threshold raised, the freed working set of one cell would otherwise stay with the
    process, fragmented among the tables it keeps, and the run's resident memory would grow cell
    by cell (docs/design.md, Costs). The next cell maps its working set again once: a few
    tenths of a second per cell, against the steps' repeated mapping that tuning avoids.

    pyarrow's memory pool (mimalloc), where pandas keeps its strings and parquet reads their
    columns, keeps what it frees for reuse whatever glibc does (reading the default matrix's
    per-sample table with a filter left 0.5 GB with it); it is handed back too, wherever pyarrow
    is loaded."""
    arrow = sys.modules.get("pyarrow")
    if arrow is not None:
        arrow.default_memory_pool().release_unused()
    if not _tuned:
        return
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # pragma: no cover - glibc without malloc_trim
        return
