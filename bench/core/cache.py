"""Atomic writes: a file appears whole or not at all.

Everything the suite writes (cache entries, tables, figures, pages) is written to a temporary
name in the same folder and renamed into place, so an interrupted run leaves either the whole
file or nothing.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_MODE = 0o666 & ~_umask()  # what open() would give; mkstemp creates files as 0600


def atomic_write(path: Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Call ``write(fileobj)`` on a temporary file next to ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, _MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write a text file atomically."""
    atomic_write(path, lambda f: f.write(text.encode()))


def atomic_write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write named arrays as one compressed .npz file atomically (read back with ``allow_pickle=False``)."""
    # numpy's stubs type savez_compressed's **kwds as if a name could be its allow_pickle argument
    atomic_write(path, lambda f: np.savez_compressed(f, **arrays))  # type: ignore[arg-type]
