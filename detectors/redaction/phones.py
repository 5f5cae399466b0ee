"""Phone numbers: the shapes people write (+44 20 7946 0958, (555) 123-4567, 030 1234567),
and any other digit group that libphonenumber (the `phonenumbers` port) calls a valid number in
one of the configured regions.

International numbers (+ or 00) and the classic punctuated shapes are taken on shape alone, as a
reader would. A run of bare digits is a phone number only when it is valid for a region and
either starts with the trunk prefix 0 or follows a word like "phone" or "call": otherwise
order numbers and amounts of the same length would go too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache

import phonenumbers

from detectors.redaction.spans import Kind, Span

# regions whose national formats are recognised unless the config names others
DEFAULT_REGIONS = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "PL", "BR", "CA", "IN", "AU",
                   "SE", "FI", "NO", "DK", "CH", "AT", "BE", "PT", "IE")

_SHAPED = re.compile(
    r"(?<![\w+])(?:"
    r"\(?(?:\+|\b00)\d{1,3}\)?[ .\-]?(?:\(\d{1,4}\)[ .\-]?)?\d{1,4}(?:[ .\-]?\d{2,4}){1,4}"
    r"|\(\d{3}\)[ .\-]?\d{3}[ .\-]\d{4}"  # (555) 123-4567
    r"|\d{3}[.\-]\d{3}[.\-]\d{4}"  # 555-123-4567, 555.123.4567
    r"|0\d{2,4}[ \-/]\d{3,4}[ \-]?\d{3,4}"  # 020 7946 0958, 07700 900123, 030/123 4567
    r")(?:\s?(?:x|ext\.?)\s?\d{1,5})?(?!\w)")
_EXTENSION = re.compile(r"\s?(?:x|ext\.?)\s?\d{1,5}$")
_LOOSE = re.compile(r"(?<![\w+@/.,\-])(?<!\d )\(?\d[\d ().\-]{5,18}\d(?![\w@]|[.,\-/]\d| \d)")
# a date, or a US social security number's shape (the SSN finder's, valid or not)
# and a decimal or an amount with thousands separators (0.227027, 1.000.000)
_NOT_A_PHONE = re.compile(r"\d{1,4}([.\-/])\d{1,2}\1\d{1,4}|\d{3}-\d{2}-\d{4}"
                          r"|\d+\.\d+|\d{1,3}(?:[.,]\d{3})+|(?:19|20)\d\d-(?:19|20)\d\d")
_DATE_INSIDE = re.compile(r"\b(?:(?:19|20)\d\d(?P<a>[.\-/ ])[01]?\d(?P=a)[0-3]?\d"
                          r"|[0-3]?\d(?P<b>[.\-/])[01]?\d(?P=b)(?:19|20)?\d\d)\b")
# the word before says what the number is, and it is not a phone
_OTHER_NUMBER = re.compile(r"\b(?:isbn|issn|order|invoice|ref|reference|tracking|account|acct|"
                           r"id|ticket|case|serial|sku|item)\b[\W\d]{0,8}$", re.IGNORECASE)
# digits that continue a code (an IBAN's "DE89 3704 …", a reference "A12 345 678")
_CODE_BEFORE = re.compile(r"[A-Za-z]*\d\w*[ \-]$")
_CONTEXT = re.compile(
    r"\b(?:phone|tel|call|ring|text\s+me|sms|whats ?app|mobile|cell|fax|contact|reach|number|"
    r"nummer|telefon|handy|t[ée]l[ée]phone|portable|num[ée]ro|appel|tel[ée]fono|m[óo]vil|"
    r"cellulare|chiama|telefoon|mobiel|bel|numer|kom[óo]rk|celular|ligar|n[úu]mero)\W{0,3}"
    r"(?:\w+\W{1,3}){0,3}$", re.IGNORECASE)


def find_phones(text: str, regions: tuple[str, ...] = DEFAULT_REGIONS) -> Iterator[Span]:
    for m in _SHAPED.finditer(text):
        number = _EXTENSION.sub("", m.group())
        if (7 <= sum(c.isdigit() for c in number) <= 15
                and not _CODE_BEFORE.search(text, max(0, m.start() - 12), m.start())
                and (not number.startswith("00") or _possible("+" + number[2:]))):
            yield Span(m.start(), m.end(), Kind.PHONE)
    for m in _LOOSE.finditer(text):
        candidate, start = m.group().strip(), m.start()
        if candidate.startswith("(") and ")" not in candidate:  # "(1977-08-25)"
            candidate, start = candidate[1:], start + 1
        if (_NOT_A_PHONE.fullmatch(candidate) or _DATE_INSIDE.search(candidate)
                or "  " in candidate or ("." in candidate and " " in candidate)  # a table, sums
                or _OTHER_NUMBER.search(text, max(0, start - 24), start)
                or _CODE_BEFORE.search(text, max(0, start - 12), start)
                or not 7 <= sum(c.isdigit() for c in candidate) <= 15):
            continue
        groups = len(re.findall(r"\d+", candidate))
        # one or two digit groups may as well be an amount, an order number or two years
        plain = groups == 1 or (groups == 2 and not candidate.startswith(("0", "(")))
        if plain and not (candidate.startswith("0") or _context_before(text, start)):
            continue
        if _valid_in_a_region(candidate, regions):
            yield Span(start, start + len(candidate), Kind.PHONE)


def _context_before(text: str, at: int) -> bool:
    return _CONTEXT.search(text[max(0, at - 60):at]) is not None


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
