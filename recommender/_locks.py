"""Advisory locks on the folders the library writes: one writer at a time, across processes and threads.

A lock is an ``flock`` (``msvcrt.locking`` on Windows) on a small file in the
folder, so the operating system releases it when its holder exits, however it
exits: a killed job never leaves a folder locked. The holder writes who it is
(process, host, start time, command) into the file, so that a job refused
because of it can say which job holds it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

from ._dates import now_text
from ._errors import BusyError

__all__ = ["held"]


@contextlib.contextmanager
def held(path: Path, *, what: str, wait: bool, remove: bool = False) -> Iterator[None]:
    """Hold the lock file ``path`` (created if needed) for the duration of the block.

    ``wait`` False: raise :class:`BusyError` naming ``what`` and the holder when
    another process or thread holds it; True: wait for it. ``remove``: delete the
    file before releasing it (an output folder keeps only what the job wrote; a
    job that opened the old file meanwhile is refused as if it were still held).
    """
    with open(path, "a+b") as handle:
        if not _acquire(handle, wait):
            handle.seek(0)
            holder = handle.read(500).decode("utf-8", "replace").strip() or "another process"
            raise BusyError(
                f"{what} is being written by another job ({holder}). Wait for it to finish, or write elsewhere."
            )
        try:
            handle.seek(0)
            handle.truncate()
            started = now_text()
            command = " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))[:200]
            handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {started}: {command}".encode())
            handle.flush()
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            if remove:
                path.unlink(missing_ok=True)
            _release(handle)


def _acquire(handle, wait: bool) -> bool:
    if os.name == "nt":  # pragma: no cover - Windows
        import msvcrt

        handle.seek(0)
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK if wait else msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _release(handle) -> None:
    if os.name == "nt":  # pragma: no cover - Windows
        import msvcrt

        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
    else:
        import fcntl

        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
