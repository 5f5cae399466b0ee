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
# unless the run continues a code ("DE89 3704 0044 …" is an IBAN's, valid or not)
_RUN = re.compile(r"(?<![\w\-.,])(?P<code>[A-Z]+)?\d+(?:[ \-]\d+)*(?![\d\-]|[.,]\d)")
_MAESTRO_12 = ("5018", "5020", "5038", "56", "57", "58", "0604", "6304", "6390", "6759", "676")
# two letters, two check digits, then 11-30 letters or digits, possibly grouped
_IBAN = re.compile(r"\b[A-Za-z]{2}\d{2}(?:[ \-]?[A-Za-z0-9]){11,30}\b")


def find_cards(text: str) -> Iterator[Span]:
    for m in _RUN.finditer(text):
        if m.group("code") or m.end() - m.start() < 12:
            continue
        taken: list[Window] = []
        for w in windows(text, m.start(), m.end(), 19):
            if (12 <= len(w.digits) <= 19 and _card_groups(w.groups) and luhn_valid(w.digits)
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
    for m in _IBAN.finditer(text):
        # the pattern may run on into the next word ("… 0130 00 AND"): the longest valid
        # prefix that ends at a group boundary is the IBAN
        candidate = m.group()
        for end in range(len(candidate), 14, -1):
            if end < len(candidate) and candidate[end].isalnum():
                continue
            if iban.is_valid(candidate[:end]):
                yield Span(m.start(), m.start() + end, Kind.IBAN)
                break


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0
