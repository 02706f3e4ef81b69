"""The temporary folders uploaded videos are decoded in, and the sweep of those a hard stop left.

A video is written to a folder for FFmpeg and removed when its request ends; a SIGKILL skips that,
and the upload stayed in the system's temporary folder (issue 34, point 11). So each folder holds a
lock file, locked while a request uses it (the kernel drops the lock when its process dies), and
at start-up the service removes its stale folders: ours by name and owner, older than
`STALE_AFTER_S`, and not locked.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

log = logging.getLogger("emodetect.serve")

VIDEO_TEMP_PREFIX = "emodetect-video-"
LOCK_NAME = ".in-use"
# Older than any request can run (the video limit is 2 minutes of media, about a minute of work),
# so that a folder another service on this machine is still filling is never taken.
STALE_AFTER_S = 600.0


@contextmanager
def upload_folder() -> Iterator[Path]:
    """A new private folder for one upload, locked while the block runs and removed after it."""
    with tempfile.TemporaryDirectory(prefix=VIDEO_TEMP_PREFIX) as folder:
        with open(Path(folder) / LOCK_NAME, "w") as lock:
            _lock(lock, wait=True)
            yield Path(folder)


def _lock(handle: IO[str], wait: bool) -> bool:
    """An exclusive lock on `handle`; False when another process holds it (and `wait` is off).
    Without fcntl (Windows) nothing is locked and age alone decides."""
    try:
        import fcntl
    except ImportError:
        return True
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True


def in_use(folder: Path) -> bool:
    """Whether a live process holds the folder's lock."""
    try:
        with open(folder / LOCK_NAME) as lock:
            return not _lock(lock, wait=False)
    except FileNotFoundError:
        return False


def stale_folders(root: Path | None = None, older_than_s: float = STALE_AFTER_S,
                  now: float | None = None) -> list[Path]:
    """Upload folders under `root` (the system's temporary folder) that a stopped process left:
    real folders (not links) owned by this user, untouched for `older_than_s`, not in use."""
    root = Path(root or tempfile.gettempdir())
    now = time.time() if now is None else now
    found = []
    for entry in sorted(root.glob(VIDEO_TEMP_PREFIX + "*")):
        try:
            info = entry.lstat()
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode) or (hasattr(os, "getuid") and info.st_uid != os.getuid()):
            continue
        if now - info.st_mtime >= older_than_s and not in_use(entry):
            found.append(entry)
    return found


def sweep_stale_uploads(root: Path | None = None, older_than_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove the stale upload folders (see `stale_folders`); one WARNING line says how many."""
    removed = []
    for folder in stale_folders(root, older_than_s):
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            removed.append(folder)
    if removed:
        log.warning("removed %d upload folder(s) a hard stop left in %s (%s*)", len(removed),
                    removed[0].parent, VIDEO_TEMP_PREFIX)
    return removed
