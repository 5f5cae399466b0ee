"""Payment card numbers (Luhn-checked) and IBANs (ISO 13616 country format and mod-97 check,
by python-stdnum).

The checksums are what let order numbers, amounts and references survive: a random digit run
passes Luhn one time in ten, and a random IBAN-shaped string fails mod 97 96 times in 97.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from stdnum import iban

from detectors.redaction.numbers import Window, isbn13, windows
from detectors.redaction.spans import Kind, Span

# a run of digit groups; the card is a window of whole groups in it ("add 22 4111 1111 …"),
# unless the run continues a code ("DE89 3704 0044 …" is an IBAN's, valid or not). No
# lookahead: the run is taken whole, in linear time, and its end is checked in find_cards.
_RUN = re.compile(r"(?<![\w\-.,])(?P<code>[A-Z]+)?\d+(?:[ \-]\d+)*")
_GLUED_AFTER = re.compile(r"-|[.,]\d")  # "1234-…", "….5": part of something longer
_MAESTRO_12 = ("5018", "5020", "5038", "56", "57", "58", "0604", "6304", "6390", "6759", "676")
# two letters, two check digits, then 11-30 letters or digits, possibly grouped
_IBAN = re.compile(r"\b[A-Za-z]{2}\d{2}(?:[ \-]?[A-Za-z0-9]){11,30}\b")
_IBAN_START = re.compile(r"\b[A-Za-z]{2}\d{2}")


def find_cards(text: str) -> Iterator[Span]:
    for m in _RUN.finditer(text):
        if m.group("code") or m.end() - m.start() < 12:
            continue
        glued = _GLUED_AFTER.match(text, m.end()) is not None
        taken: list[Window] = []
        # a printed card has five groups at most (4-4-4-4-3)
        windows_ = sorted(windows(text, m.start(), m.end(), (12, 19), 5),
                          key=lambda w: (-len(w.digits), w.start))
        for w in windows_:
            if (not (glued and w.end == m.end()) and _card_groups(w.groups)
                    and luhn_valid(w.digits)
                    and (len(w.digits) >= 13 or w.digits.startswith(_MAESTRO_12))
                    and not isbn13(w.digits)
                    and all(w.end <= t.start or w.start >= t.end for t in taken)):
                taken.append(w)
                yield Span(w.start, w.end, Kind.CARD)


def _card_groups(groups: tuple[int, ...]) -> bool:
    """Written in one run, or grouped as cards are printed: fours (4-6-5 or 4-6-4 for
    American Express and Diners), not as ISBNs or phone numbers are."""
    return (len(groups) == 1 or groups[:3] in ((4, 6, 5), (4, 6, 4))
            or (all(g == 4 for g in groups[:-1]) and 1 <= groups[-1] <= 4))


def find_ibans(text: str) -> Iterator[Span]:
    end = 0
    for start in _IBAN_START.finditer(text):
        m = _IBAN.match(text, start.start())
        if start.start() < end or m is None:
            continue
        # the pattern may run on into the next word ("… 0130 00 AND"): the longest valid
        # prefix that ends at a group boundary is the IBAN; where none is, a later start may
        # be ("flight ab123 ES69 0645 …")
        candidate = m.group()
        for length in range(len(candidate), 14, -1):
            if length < len(candidate) and candidate[length].isalnum():
                continue
            if _mod97(candidate[:length]) and iban.is_valid(candidate[:length]):
                end = m.start() + length
                yield Span(m.start(), end, Kind.IBAN)
                break


def _mod97(candidate: str) -> bool:
    """ISO 7064 mod 97-10, the cheap half of the IBAN check: 96 random strings in 97 fail it
    here, before python-stdnum looks up the country's format."""
    compact = _SEPARATORS.sub("", candidate).upper()
    return int((compact[4:] + compact[:4]).translate(_AS_DIGITS)) % 97 == 1


_SEPARATORS = re.compile(r"[ \-]")
_AS_DIGITS = {ord(c): str(ord(c) - 55) for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"}


def luhn_valid(digits: str) -> bool:
    # every second digit from the right doubled, digits of the product summed: 5 -> 10 -> 1
    return (sum(map(int, digits[-1::-2]))
            + sum(map(int, digits[-2::-2].translate(_DOUBLED)))) % 10 == 0


_DOUBLED = str.maketrans("0123456789", "0246813579")
