"""Claims: an exclusive hold on one cache entry while a process computes it.

Two runs on one cache (or the workers of a cluster sharing one cache folder) must not compute the
same model or cell twice. Before computing an entry a run *claims* it: it takes an exclusive
``flock`` on ``<cache>/claims/<name>.claim`` and writes its pid, host and start time into the
file (for messages only). Another run that finds the entry claimed does other work first and
waits for it last (bench/run/execute.py). The kernel releases a lock when its holder ends, by
any means (kill -9 included), so a claim left by a dead run is free at once: stale claims are
taken over without timeouts. Over NFS, Linux carries flock as a POSIX lock through the server's
lock manager, which frees the locks of a crashed client when its lease ends.

Releasing unlinks the file before closing it. A waiter that opened the file before the unlink
holds a lock on an inode no longer at the path; it notices (the path's inode differs from its
descriptor's) and tries again on the new file. POSIX only (``fcntl``).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import Self


class Claim:
    """An exclusive claim on one name in a claims folder.

    Args:
        folder: the claims folder (created when needed).
        name: the claimed entry, e.g. ``model-<key>``.
        poll: seconds between tries while waiting.
    """

    def __init__(self, folder: Path, name: str, *, poll: float = 0.5) -> None:
        self.path = folder / f"{name}.claim"
        self.poll = poll
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, *, wait: bool) -> bool:
        """Take the claim; when another process holds it, wait for it (``wait``) or return False."""
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                if not wait:
                    return False
                time.sleep(self.poll)
                continue
            try:
                current = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                current = False
            if not current:  # released (unlinked) between our open and our lock: try the new file
                os.close(fd)
                continue
            self._fd = fd  # held from here on: release() unlinks and closes, whatever happens next
            try:
                if os.fstat(fd).st_size:  # a file left by a holder that died; a fresh one is empty
                    # (truncating unconditionally costs a forced writeback at close on ext4: ms a claim)
                    os.ftruncate(fd, 0)
                owner = {
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                }
                os.write(fd, json.dumps(owner).encode())
            except BaseException:  # a full disk, an interruption: give the claim up rather than leak it
                self.release()
                raise
            return True

    def owner(self) -> str:
        """Who holds the claim, as far as its file says ("" when unknown)."""
        try:
            doc = json.loads(self.path.read_text())
            return f"pid {doc['pid']} on {doc['host']} since {doc['since']}"
        except (OSError, ValueError, KeyError, TypeError):
            return ""

    def release(self) -> None:
        """Give the claim up (unlink, then unlock by closing)."""
        if self._fd is None:
            return
        self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> Self:
        self.acquire(wait=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
