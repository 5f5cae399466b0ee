"""Redaction of personal data and secrets from texts shown as examples (drift clusters).

`redact(text)` replaces API keys and tokens, e-mail addresses, payment card numbers
(Luhn-checked, so order numbers survive) and phone numbers with bracketed placeholders.
It is deliberately greedy about secrets and conservative about numbers: a leaked key is
worse than a hidden hash, while dates, amounts and short ids keep examples readable.
"""

from __future__ import annotations

import re

_SECRET = "[SECRET]"

# key and token shapes, most specific first; each is replaced whole
_SECRETS = [
    re.compile(r"\bsk-(?:proj-|ant-|live-|svcacct-)?[A-Za-z0-9_\-]{16,}"),  # OpenAI, Anthropic
    re.compile(r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}"),  # Stripe
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),  # AWS access key ids
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}"),  # GitHub tokens
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{22,}"),
    re.compile(r"\bxox[abposr]-[A-Za-z0-9\-]{10,}"),  # Slack
    re.compile(r"\bAIza[0-9A-Za-z_\-]{35}"),  # Google API keys
    re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"),  # JWT
]
_BEARER = re.compile(r"\b(Bearer|Basic|Token)(\s+)[A-Za-z0-9._~+/=\-]{12,}", re.IGNORECASE)
_ASSIGNED = re.compile(  # api_key=..., "password": "...", secret: ...
    r"\b((?:api[_-]?key|secret|token|password|passwd|access[_-]?key)[\"']?\s*[:=]\s*[\"']?)"
    r"[^\s\"',;]{8,}", re.IGNORECASE)
_HEX = re.compile(r"\b[0-9a-fA-F]{32,}\b")
_BASE64 = re.compile(r"(?<![A-Za-z0-9+/_\-])[A-Za-z0-9+/_\-]{32,}={0,2}")
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}\b")
_CARD = re.compile(r"(?<![\d\-])\d(?:[ \-]?\d){12,18}(?![\d\-])")
_PHONE = re.compile(
    r"(?<![\w+])(?:"
    r"\+\d{1,3}[ .\-]?(?:\(\d{1,4}\)[ .\-]?)?\d{1,4}(?:[ .\-]?\d{2,4}){1,4}"  # +44 20 7946 0958
    r"|\(\d{3}\)[ .\-]?\d{3}[ .\-]\d{4}"  # (555) 123-4567
    r"|\d{3}[.\-]\d{3}[.\-]\d{4}"  # 555-123-4567, 555.123.4567
    r"|0\d{2,4}[ \-]\d{3,4}[ \-]?\d{3,4}"  # 020 7946 0958, 07700 900123
    r")(?!\w)")


def redact(text: str) -> str:
    """The text with secrets, e-mails, card numbers and phone numbers replaced."""
    for pattern in _SECRETS:
        text = pattern.sub(_SECRET, text)
    text = _BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}{_SECRET}", text)
    text = _ASSIGNED.sub(lambda m: f"{m.group(1)}{_SECRET}", text)
    text = _HEX.sub(_SECRET, text)
    text = _BASE64.sub(lambda m: _SECRET if _looks_random(m.group()) else m.group(), text)
    text = _EMAIL.sub("[EMAIL]", text)
    text = _CARD.sub(lambda m: "[CARD]" if _luhn_valid(m.group()) else m.group(), text)
    return _PHONE.sub(lambda m: "[PHONE]" if _phone_digits(m.group()) else m.group(), text)


def _looks_random(token: str) -> bool:
    """Mixed case and digits: a key, not a long word, path or identifier in snake_case."""
    return (any(c.islower() for c in token) and any(c.isupper() for c in token)
            and sum(c.isdigit() for c in token) >= 2)


def _luhn_valid(candidate: str) -> bool:
    digits = [int(c) for c in candidate if c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _phone_digits(candidate: str) -> bool:
    return 7 <= sum(c.isdigit() for c in candidate) <= 15
