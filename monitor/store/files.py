"""The store's files on disk: created owner-only, held by one daemon at a time, and watched
for being deleted or replaced under the open connection.

SQLite keeps writing to the file it opened even after its path is unlinked or renamed over;
every commit would then be acknowledged into a file no one will read again. `FileIdentity`
lets the store notice (the path's device and inode against the ones it opened) and refuse.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from monitor.core.errors import StoreError

OWNER_ONLY_DIR = 0o700
OWNER_ONLY_FILE = 0o600


def create_owner_only(path: Path) -> None:
    """Create the missing directories (0700) and the database file (0600) before SQLite
    opens it; SQLite gives its -wal and -shm files the database file's mode. Existing
    directories and files keep theirs."""
    create_owner_only_dirs(path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, OWNER_ONLY_FILE)
    os.close(fd)


class FileIdentity:
    """The device and inode of the file a path named when the store opened it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        st = os.stat(path)
        self._identity = (st.st_dev, st.st_ino)

    def check(self) -> None:
        """:raises StoreError: the path is gone, or names another file now."""
        try:
            st = os.stat(self.path)
        except OSError as exc:
            raise StoreError(f"the store file is gone ({exc.strerror}); nothing written now "
                             "would be kept: restart driftwatch") from None
        if (st.st_dev, st.st_ino) != self._identity:
            raise StoreError("the store file was replaced; nothing written now would be "
                             "kept: restart driftwatch")


class StoreLock:
    """An exclusive lock on `<store>.lock`, held while one daemon uses the store: a second
    daemon on the same file would run every job and send every alert twice.

    The lock is an flock, so it is released when the process ends, however it ends.

    :raises StoreError: another process holds it (its pid named, when it wrote one).
    """

    def __init__(self, store_path: Path) -> None:
        self.path = store_path.with_name(store_path.name + ".lock")
        create_owner_only_dirs(self.path)
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                                       OWNER_ONLY_FILE)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(self._fd, 32).decode(errors="replace").strip() or "unknown"
            self.release()
            raise StoreError(f"store {store_path} is in use by another driftwatch (pid "
                             f"{holder}, lock {self.path}); one daemon per store") from None
        os.ftruncate(self._fd, 0)
        os.write(self._fd, f"{os.getpid()}\n".encode())

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor releases the flock
            self._fd = None


def create_owner_only_dirs(path: Path) -> None:
    """Create the directories above `path` that are missing, owner-only (0700)."""
    missing = [p for p in path.parents if not p.exists()]
    for directory in reversed(missing):
        directory.mkdir(mode=OWNER_ONLY_DIR, exist_ok=True)
