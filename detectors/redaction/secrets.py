"""API keys, tokens and passwords: the known key shapes, `Bearer …` headers, values assigned to
a key-like name, and long random-looking hex or base64.

Deliberately greedy: a leaked key is worse than a hidden hash. Where a name introduces the value
(`api_key=…`, `Authorization: Bearer …`) only the value is redacted, so the reader still sees
what it was.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from detectors.redaction.spans import Kind, Span

# key and token shapes, each replaced whole
_SHAPES = re.compile("|".join([
    r"\bsk-(?:proj-|ant-|live-|svcacct-)?[A-Za-z0-9_\-]{16,}",  # OpenAI, Anthropic
    r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}",  # Stripe
    r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",  # AWS access key ids
    r"\bgh[pousr]_[A-Za-z0-9]{30,}",  # GitHub tokens
    r"\bgithub_pat_[A-Za-z0-9_]{22,}",
    r"\bglpat-[A-Za-z0-9_\-]{20,}",  # GitLab
    r"\bxox[abposr]-[A-Za-z0-9\-]{10,}",  # Slack
    r"\bAIza[0-9A-Za-z_\-]{35}",  # Google API keys
    r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}",  # JWT
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)",
]))
# the value after the name (group 1 or 2); a quote before the value is group q
_INTRODUCED = re.compile(
    r"\b(?:Bearer|Basic|Token)\s+((?=[^\s]*\d)[A-Za-z0-9._~+/=\-]{12,})"
    r"|\b(?:api[_-]?key|secret|token|password|passwd|pwd|access[_-]?key|client[_-]?secret)"
    r"[\"']?[ \t]*[:=][ \t]*(?P<q>[\"'])?([^\s\"',;()\[\]{}]{8,})", re.IGNORECASE)
_IDENTIFIER = re.compile(r"[A-Za-z_.]+")  # `password = hashed_password`: code, not a value
_HEX = re.compile(r"\b[0-9a-fA-F]{32,}\b")
_BASE64 = re.compile(r"(?<![A-Za-z0-9+/_\-])[A-Za-z0-9+/_\-]{32,}={0,2}")


def find_secrets(text: str) -> Iterator[Span]:
    for m in _SHAPES.finditer(text):
        yield Span(m.start(), m.end(), Kind.SECRET)
    for m in _INTRODUCED.finditer(text):
        group = 1 if m.group(1) is not None else 3
        if group == 3 and not m.group("q") and _IDENTIFIER.fullmatch(m.group(3)):
            continue
        yield Span(m.start(group), m.end(group), Kind.SECRET)
    for m in _HEX.finditer(text):
        yield Span(m.start(), m.end(), Kind.SECRET)
    for m in _BASE64.finditer(text):
        if _looks_random(m.group()):
            yield Span(m.start(), m.end(), Kind.SECRET)


def _looks_random(token: str) -> bool:
    """Mixed case and digits: a key, not a long word, identifier in snake_case or a path
    (facebook/blenderbot-400M-distill, contracts/token/ERC1155)."""
    if "/" in token and any(re.fullmatch(r"[A-Za-z][a-z]{2,}", part) for part in token.split("/")):
        return False
    return (any(c.islower() for c in token) and any(c.isupper() for c in token)
            and sum(c.isdigit() for c in token) >= 2)
