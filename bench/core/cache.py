"""Atomic writes: a file appears whole or not at all.

Everything the suite writes (cache entries, tables, figures, pages) is written to a temporary
name in the same folder and renamed into place, so an interrupted run leaves either the whole
file or nothing.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

from bench.core.errors import BenchError

NAME_MAX = 255  # bytes in one path component on the usual Linux file systems


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
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        if err.filename is None:  # say which file could not be written (a full disk)
            raise OSError(err.errno, err.strerror, str(path)) from err
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a file's bytes atomically."""
    atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: Path, text: str) -> None:
    """Write a text file atomically."""
    atomic_write_bytes(path, text.encode())


def atomic_write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write named arrays as one compressed .npz file atomically (read back with ``allow_pickle=False``)."""
    # numpy's stubs type savez_compressed's **kwds as if a name could be its allow_pickle argument
    atomic_write(path, lambda f: np.savez_compressed(f, **arrays))  # type: ignore[arg-type]


def check_writable(folder: str | Path, what: str) -> int:
    """Refuse a folder that cannot be created or written, before any work; return its free bytes.

    Walks up to the nearest part of the path that exists: it must be a folder (not a file) in
    which a file can be created (tried with an anonymous temporary file, which leaves nothing
    behind, so a read-only mount or a missing permission is caught even for root); every name
    in the path must be one the file system accepts. Creates nothing.
    """
    path = Path(folder)
    for name in path.parts:
        if len(os.fsencode(name)) > NAME_MAX:
            raise BenchError(f"{what} {str(folder)[:60]}...: a name in it is longer than {NAME_MAX} bytes")
    probe = path
    while not (probe.exists() or probe.is_symlink()) and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        kind = "a file" if probe.is_file() else "not a folder"
        raise BenchError(f"{what} {folder}: {probe} is {kind}; give a folder that exists or can be created")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as err:
        raise BenchError(f"{what} {folder}: cannot write in {probe} ({err.strerror}); give a writable folder") from None
    return shutil.disk_usage(probe).free
