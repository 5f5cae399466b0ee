"""What every family of detectors returns, and how overlapping finds are settled.

A `Span` is one find: where it lies in the text and which kind it is. Finders run on the
original text independently, so one kind never sees another's placeholder; `resolve` then keeps
a set of spans that do not overlap, preferring the kind that is surest (a validated IBAN over a
phone number found inside it), then the longer span.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """The kinds of personal data and secrets, each with its own placeholder."""

    SECRET = "secret"
    EMAIL = "email"
    CARD = "card"
    IBAN = "iban"
    SSN = "ssn"
    NATIONAL_ID = "national_id"
    IP = "ip"
    PHONE = "phone"
    PASSPORT = "passport"
    LICENCE = "licence"
    NAME = "name"
    ADDRESS = "address"

    @property
    def placeholder(self) -> str:
        return f"[{self.name}]"


# surest first: a shape with a checksum beats a looser shape that happens to overlap it
PRECEDENCE = (Kind.SECRET, Kind.EMAIL, Kind.IBAN, Kind.CARD, Kind.SSN, Kind.NATIONAL_ID,
              Kind.IP, Kind.PASSPORT, Kind.LICENCE, Kind.PHONE, Kind.ADDRESS, Kind.NAME)


@dataclass(frozen=True, slots=True)
class Span:
    start: int
    end: int
    kind: Kind
    placeholder: str = ""  # empty: the kind's own


Finder = Callable[[str], Iterable[Span]]


def resolve(spans: Iterable[Span], rank: Callable[[Span], int]) -> list[Span]:
    """Non-overlapping spans in text order: by `rank` (lower wins), then longest first."""
    kept: list[Span] = []
    for span in sorted(spans, key=lambda s: (rank(s), s.start - s.end, s.start)):
        if all(span.end <= k.start or span.start >= k.end for k in kept):
            kept.append(span)
    return sorted(kept, key=lambda s: s.start)


def substitute(text: str, spans: list[Span]) -> str:
    """The text with each span (non-overlapping, in order) replaced by its placeholder."""
    out, at = [], 0
    for span in spans:
        out += [text[at:span.start], span.placeholder or span.kind.placeholder]
        at = span.end
    out.append(text[at:])
    return "".join(out)
