"""Text from the wire made safe for an operator's terminal and for one-line logs.

Prompts, completions, service and model names come from the apps. Printed raw, an ESC
sequence in one could move the cursor, recolour or retitle the terminal, or hide what
follows; a carriage return or newline could forge a table row or a log line. Every control
character (C0 but for the space, DEL, C1) and every bidirectional override is shown
as a visible escape instead (`\\x1b`, `\\n`, `\\u202e`), so what an operator reads is what
was sent, on the line it belongs to.
"""

from __future__ import annotations

import logging
import re

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with every control and bidi-override character as a visible escape."""
    return _UNSAFE.sub(_escape, text)


class OneLineFormatter(logging.Formatter):
    """A text log formatter whose message is always one line: a newline or ESC in a service
    name cannot start a forged record. A traceback, which the daemon writes itself, keeps
    its lines."""

    def format(self, record: logging.LogRecord) -> str:
        msg, args = record.msg, record.args
        record.msg, record.args = printable(record.getMessage()), None
        try:
            return super().format(record)
        finally:
            record.msg, record.args = msg, args
