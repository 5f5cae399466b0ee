"""`TokenSource`: the current bearer token of an auth section, for a listener that keeps
checking it while it runs.

A token file is re-read when it changes (a rotated secret takes effect without a restart),
and a read that finds no usable token (the file emptied, truncated mid-rotation, deleted)
keeps the last good token, with a warning: a bad read never turns auth off.
"""

from __future__ import annotations

import logging
import os

from monitor.core.config import AuthConfig
from monitor.core.errors import ConfigError

log = logging.getLogger(__name__)


class TokenSource:
    """:raises ConfigError: at construction, when there is no usable token to start with."""

    def __init__(self, auth: AuthConfig, name: str) -> None:
        self._auth = auth
        self.name = name  # the config path, e.g. "ops.auth.read", for log lines
        self._stamp = self._file_stamp()
        self._token = auth.token()
        self._failing = False

    def _file_stamp(self) -> tuple[int, int, int, int] | None:
        path = self._auth.bearer_token_file
        if path is None:
            return None
        try:
            st = os.stat(path)
        except OSError:
            return None
        return st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size

    def current(self) -> str:
        """The token to check requests against: the file's, or the last good one."""
        if self._auth.bearer_token_file is None:
            return self._token
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return self._token
        self._stamp = stamp
        try:
            token = self._auth.token()
        except ConfigError as exc:
            if not self._failing:
                log.warning("%s.%s; keeping the last good token", self.name, exc)
            self._failing = True
            return self._token
        if token != self._token:
            log.info("%s: the token file changed; using the new token", self.name)
        self._token, self._failing = token, False
        return token
