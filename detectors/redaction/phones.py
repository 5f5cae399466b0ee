"""Phone numbers: the shapes people write (+44 20 7946 0958, (555) 123-4567, 030 1234567,
08-123 45 67), and any other run of digit groups that libphonenumber (the `phonenumbers`
port) calls a valid number in one of the configured regions.

International numbers (+ or 00) and the classic punctuated shapes are taken on shape alone, as a
reader would; so is any number just after a word that says it is a phone ("call me on …").
Elsewhere a number must be valid in a region, and a bare run of one or two groups is taken
only when it looks like an identifier rather than a quantity: it starts with the trunk prefix
0, or it is one run of 8-12 digits that is not a date, a round amount or a count (fail
closed: such a run is as likely to be a phone number as anything, and nothing says it is
not). Words that name the number as something else ("order", "invoice", "ISBN"), a valid
ISBN, dates and year ranges, code around it ("x = 13591409") and tables of numbers keep it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache

import phonenumbers

from detectors.redaction.numbers import (
    Window,
    in_code,
    isbn13,
    named_otherwise,
    quantity,
    windows,
)
from detectors.redaction.spans import Kind, Span

# regions whose national formats are recognised unless the config names others
DEFAULT_REGIONS = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "PL", "BR", "CA", "IN", "AU",
                   "SE", "FI", "NO", "DK", "CH", "AT", "BE", "PT", "IE")

_SHAPED = re.compile(
    r"(?<![\w+\-])(?:"
    r"0\d{1,3}-\d{2,3}(?: \d{2}){1,2}(?![\d\-])"  # Sweden's 08-123 45 67, 0303-62 08 67
    r"|0\d{1,3}-\d{6,8}(?![\d\-])"  # the Netherlands' 010-1234567
    r"|(?P<intl>\(?(?:\+|\b00)\d{1,3}\)?[ .\-]?(?:\(\d{1,4}\)[ .\-]?)?\d{1,4}"
    r"(?:[ .\-]?\d{2,4}){1,4})"
    r"|(?:\b1[ .\-]?)?\(\d{3}\)[ .\-]?\d{3}[ .\-]\d{4}"  # (555) 123-4567, 1 (555) 123-4567
    r"|(?:\b1[.\-])?\d{3}[.\-]\d{3}[.\-]\d{4}"  # 555-123-4567, 1-555-123-4567
    r"|0\d{2,4}[ \-/]\d{3,4}[ \-]?\d{3,4}"  # 020 7946 0958, 07700 900123, 030/123 4567
    r")(?:\s?(?:x|ext\.?)\s?\d{1,5})?(?!\w|-\w)")
_EXTENSION = re.compile(r"\s?(?:x|ext\.?)\s?\d{1,5}$")
# a run of digit groups; the phone number is a window of whole groups in it
_LOOSE = re.compile(r"(?<![\w+@/.,\-$€£¥=#])\(?\d[\d ().\-]{5,40}\d(?![\w@]|[.,\-/]\w)")
# a date, or a US social security number's shape (the SSN finder's, valid or not)
# and a decimal or an amount with thousands separators (0.227027, 1.000.000)
_NOT_A_PHONE = re.compile(r"\(?\d{1,4}([.\-/])\d{1,2}\1\d{1,4}|\d{3}-\d{2}-\d{4}"
                          r"|\d+\.\d+|\d{1,3}(?:[.,]\d{3})+|(?:19|20)\d\d[\- ](?:19|20)\d\d")
_DATE_INSIDE = re.compile(r"\b(?:(?:19|20)\d\d-(?:19|20)\d\d"
                          r"|(?:19|20)\d\d(?P<a>[.\-/ ])[01]?\d(?P=a)[0-3]?\d"
                          r"|[0-3]?\d(?P<b>[.\-/])[01]?\d(?P=b)(?:19|20)?\d\d)\b")
# digits that continue a code (an IBAN's "DE89 3704 …", a reference "A12 345 678"); an
# ordinal or a time ("March 22nd", "at 5pm") is not one
_CODE_BEFORE = re.compile(
    r"(?<!\w)(?!\d+(?:st|nd|rd|th|am|pm|h)\W)[A-Za-z]+\d\w*[ \-](?:\d+[ \-])*$")
_DIGIT_BEFORE = re.compile(r"\d[,;:]? $")
_WORDS = r"\W{{0,3}}(?:\w+\W{{1,3}}){{0,{}}}$"
# words that say a phone number follows: just after them, any number is one; a little
# further on, or after a vaguer word ("number", "contact"), one valid in a region
_STRONG = (r"phone|tel|call|ring|text\s+me|sms|whats ?app|mobile|cell|fax|telefon|handy|"
           r"t[ée]l[ée]phone|portable|appel|tel[ée]fono|m[óo]vil|cellulare|chiama|telefoon|"
           r"mobiel|bel|kom[óo]rk|celular|ligar")
_CUE = re.compile(rf"\b(?:{_STRONG})" + _WORDS.format(2), re.IGNORECASE)
_CONTEXT = re.compile(rf"\b(?:{_STRONG}|contact|reach|number|nummer|num[ée]ro|numer|n[úu]mero)"
                      + _WORDS.format(3), re.IGNORECASE)


def find_phones(text: str, regions: tuple[str, ...] = DEFAULT_REGIONS,
                bare: bool = True) -> Iterator[Span]:
    """Phone numbers in text; `bare`: also bare runs that nothing names (see the module)."""
    for m in _SHAPED.finditer(text):
        number = _EXTENSION.sub("", m.group())
        if (7 <= sum(c.isdigit() for c in number) <= 15
                and (number.lstrip("(").startswith("+")
                     or not _CODE_BEFORE.search(text, max(0, m.start() - 40), m.start()))
                and not (m.group("intl") and number.startswith("00")
                         and not _possible("+" + number[2:]))):
            yield Span(m.start(), m.end(), Kind.PHONE)
    for m in _LOOSE.finditer(text):
        taken: list[Span] = []
        for w in _candidates(text, m.start(), m.end()):
            start = w.start - (text[w.start - 1] == "(" and ")" in text[w.start:w.end])
            if (all(w.end <= t.start or start >= t.end for t in taken)
                    and _is_phone(text, start, w, regions, bare)):
                taken.append(Span(start, w.end, Kind.PHONE))
        yield from taken


def _candidates(text: str, start: int, end: int) -> list[Window]:
    """Windows of the run that could be a phone number: the whole run, or one that starts as
    phone numbers do ("pin 1234 01632 960 562"), or one compact group, in that order, or one
    after a sentence's end; others continue a run of numbers ("… 99 100 101 102 …"). Six
    groups at most, single digits only in front ("1 555 123 4567"; "0 0 100 100" is not)."""
    def opens(at: int) -> bool:  # _DIGIT_BEFORE, by hand: this runs for every group
        before = text[max(0, at - 3):at]
        return (at == start or text[at] == "0" or before[-1:] != " "
                or not (before[-2:-1].isdigit()
                        or (before[-2:-1] in (",", ";", ":") and before[:1].isdigit())))

    found = [w for w in windows(text, start, end, (7, 15), 6, " (", opens)
             if 1 not in w.groups[1:]]
    return sorted(found, key=lambda w: ((w.start, w.end) != (start, end),
                                        text[w.start] != "0" and text[w.start - 1] != "(",
                                        -len(w.digits), w.start))


def _is_phone(text: str, start: int, w: Window, regions: tuple[str, ...], bare: bool) -> bool:
    candidate = text[start:w.end]
    before = text[max(0, start - 60):start]
    if (not 7 <= len(w.digits) <= 15 or _NOT_A_PHONE.fullmatch(candidate)
            or _DATE_INSIDE.search(candidate) or isbn13(w.digits)
            or "  " in candidate or ("." in candidate and " " in candidate)  # a table, sums
            or (w.groups[0] == 1 and candidate[0] != "1")
            or named_otherwise(text, start)):
        return False
    if in_code(text, start):  # "x = 42776405", even in a sentence about a phone
        return False
    if _CUE.search(before):
        return True
    leading = candidate.startswith(("0", "("))
    if (_CODE_BEFORE.search(before)
            or (_DIGIT_BEFORE.search(before) and not (leading or len(w.groups) == 1))):
        return False  # continues a code or a run of numbers ("… 99 100 101 102 …")
    if len(w.groups) == 1 and bare:
        if 8 <= len(w.digits) <= 13 and leading:
            return True  # a leading zero: an identifier, not a quantity; a trunk or 00 prefix
        # a bare run of 8-12 digits is taken (fail closed) unless it reads as a quantity
        if 8 <= len(w.digits) <= 12 and not quantity(w.digits):
            return _valid_in_a_region(candidate, regions)
    if len(w.groups) <= 2 and not leading and not _CONTEXT.search(before):
        return False  # one or two groups may as well be an amount, an order number, two years
    return _valid_in_a_region(candidate, regions)


def _possible(international: str) -> bool:
    try:
        return phonenumbers.is_possible_number(phonenumbers.parse(international, None))
    except phonenumbers.NumberParseException:
        return False


@lru_cache(maxsize=4096)
def _valid_in_a_region(candidate: str, regions: tuple[str, ...]) -> bool:
    for region in regions:
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number_for_region(number, region):
            return True
    return False
