"""A one-line progress bar on stderr for the commands that send traffic (replay, demo).

Drawn only on a terminal, so logs and pipes get the final summaries alone.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    """A one-line progress bar on a terminal; silent when the stream is not one."""

    def __init__(self, total: int, stream: TextIO = sys.stderr, *, width: int = 30) -> None:
        self.total = max(total, 1)
        self.stream = stream
        self.width = width
        self.enabled = stream.isatty()
        self._shown = 0.0
        self._drawn = False

    def update(self, done: int, note: str = "", *, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self._shown < 0.1):
            return
        self._shown = now
        share = min(done / self.total, 1.0)
        filled = int(share * self.width)
        bar = "█" * filled + "░" * (self.width - filled)
        self.stream.write(f"\r\x1b[2K{bar} {share:4.0%}  {note}")
        self.stream.flush()
        self._drawn = True

    def clear(self) -> None:
        """Wipe the bar so that a message can be printed on a clean line."""
        if self._drawn:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self._drawn = False

    def close(self, done: int, note: str = "") -> None:
        if self.enabled:
            self.update(done, note, force=True)
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
