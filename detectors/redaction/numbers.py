"""Digit runs and the words around them, shared by the card, national-id and phone finders.

A run is groups of digits joined by single separators. Finders look at windows of whole
groups inside a run, so a value written just after another number ("add 22 3532 …", "pin
1234 01632 960 562") is still found, but only where a space (not a hyphen or a dot) divides
it from its neighbour. `named_otherwise` says when the words just before a number name it as
something that is not personal data (an order, an invoice, an ISBN), and `quantity` when a
bare run reads as an amount or a date rather than an identifier.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from stdnum import isbn

_GROUP = re.compile(r"\d+")
# the word before says what the number is, within the same sentence: "order no. 12345678",
# "ISBN-10: 0231130104", "invoice #987654321"
_OTHER_NUMBER = re.compile(
    r"\b(?:isbn|issn|order|invoice|ref|reference|tracking|ticket|case|serial|sku|item|"
    r"part|model|version|build|page|line|row|port|pid|uid|gid|commit|issue|pr|step)s?\b"
    r"(?:\s*(?:no|nr|number|num|id|code)\b\.?)?(?:[^\w.!?\n]|\d){0,8}$", re.IGNORECASE)
# code, not prose: "L = 13591409", "x += 545140134", "mod 33554393"
_OPERATOR_BEFORE = re.compile(r"(?:[=*+/%^<>|&]|\bmod)[ \t]*$")
_DATE8 = re.compile(r"(?:19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])")
_ROUND = re.compile(r"\d*?(\d)\1{4,}\d{0,1}")


@dataclass(frozen=True, slots=True)
class Window:
    """Whole groups `first..last` of a run: where they lie and their digits."""

    start: int
    end: int
    digits: str
    groups: tuple[int, ...]  # lengths


def windows(text: str, start: int, end: int, digits: tuple[int, int], max_groups: int,
            separators: str = " ", opens: Callable[[int], bool] | None = None) -> Iterator[Window]:
    """Every window of at most `max_groups` whole groups in text[start:end] whose digit count
    lies in `digits` (inclusive) and whose edges inside the run fall on one of `separators` (a
    hyphen joins "1977-08-25", it does not divide); where `opens(offset)` is false, a window
    starting at that offset is one group only. Linear in the run: a table of numbers
    thousands of groups long costs no more than its length times `max_groups`."""
    groups = [(m.start(), m.end()) for m in _GROUP.finditer(text, start, end)]
    least, most = digits
    for i in range(len(groups)):
        if i and text[groups[i][0] - 1] not in separators:
            continue
        widest = max_groups if opens is None or opens(groups[i][0]) else 1
        count = 0
        for j in range(i, min(len(groups), i + widest)):
            count += groups[j][1] - groups[j][0]
            if count > most:
                break
            if count >= least and (j + 1 == len(groups) or text[groups[j][1]] in separators):
                chosen = groups[i:j + 1]
                yield Window(chosen[0][0], chosen[-1][1],
                             "".join(text[a:b] for a, b in chosen),
                             tuple(b - a for a, b in chosen))


def named_otherwise(text: str, at: int) -> bool:
    """The words just before `at` name the number there as something not personal."""
    return _OTHER_NUMBER.search(text, max(0, at - 32), at) is not None


def in_code(text: str, at: int) -> bool:
    """The number at `at` is an operand in code or a formula, not a value someone wrote."""
    return _OPERATOR_BEFORE.search(text, max(0, at - 8), at) is not None


def quantity(digits: str) -> bool:
    """A bare run that reads as an amount, a date or a count (1000000, 20151125, 12345678),
    not an identifier."""
    return bool(_DATE8.fullmatch(digits) or _ROUND.fullmatch(digits)
                or digits in "01234567890" or digits in "98765432109")


def isbn13(digits: str) -> bool:
    """A valid ISBN-13 (978 or 979 and its check digit): a book, not a card or a phone."""
    return len(digits) == 13 and digits.startswith(("978", "979")) and isbn.is_valid(digits)
