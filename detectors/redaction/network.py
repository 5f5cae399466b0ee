"""E-mail addresses and IP addresses (v4 and v6, checked by the standard library's
`ipaddress`, so version strings and times survive).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator

from detectors.redaction.spans import Kind, Span

_EMAIL = re.compile(
    r"\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}\b")
# not after "v" or "version ", not part of a longer dotted run (1.2.3.4.5 is a version)
_IPV4 = re.compile(r"(?<![\w.])(?<!version )(?:\d{1,3}\.){3}\d{1,3}(?:/\d{1,2})?(?!\w|\.\d)")
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|:|"
                   r"(?:\d{1,3}\.){3}\d{1,3})(?:%\w+)?(?![\w:])")


def find_emails(text: str) -> Iterator[Span]:
    for m in _EMAIL.finditer(text):
        yield Span(m.start(), m.end(), Kind.EMAIL)


def find_ips(text: str) -> Iterator[Span]:
    for m in _IPV4.finditer(text):
        if _valid(m.group().split("/")[0], ipaddress.IPv4Address):
            yield Span(m.start(), m.end(), Kind.IP)
    for m in _IPV6.finditer(text):
        address = m.group().split("%")[0]
        # three groups with digits at least: `a::b` is a Python slice or a C++ scope, not a host
        if (sum(bool(g) for g in re.split(r"[:.]", address)) >= 3
                and _valid(address, ipaddress.IPv6Address)):
            yield Span(m.start(), m.end(), Kind.IP)


def _valid(candidate: str, kind: type[ipaddress.IPv4Address | ipaddress.IPv6Address]) -> bool:
    try:
        kind(candidate)
    except ValueError:
        return False
    return True
