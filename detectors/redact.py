"""`redact(text)`: the text with personal data and secrets replaced by a placeholder per kind,
using the default `Redactor` (every kind, no patterns of the user's own).

The daemon builds its own `Redactor` from the `redaction:` config (detectors/redaction/); this
function is for callers that have none, and gives them the same finders and the same rules.
"""

from __future__ import annotations

from functools import cache

from detectors.redaction.redactor import Redactor


def redact(text: str) -> str:
    """The text with secrets, e-mails, phones, cards, IBANs, national ids, IPs, document
    numbers, announced names and street addresses replaced by `[KIND]` placeholders."""
    return _default().redact(text)


@cache
def _default() -> Redactor:
    return Redactor()
