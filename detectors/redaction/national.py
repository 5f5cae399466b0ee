"""US social security numbers and the national identity numbers of other countries, each
validated by its own checksum or structure (python-stdnum where it has the number).

A shape alone decides only where the shape is distinctive (123-45-6789, AB 12 34 56 C). A bare
run of nine digits that passes the Dutch 11-test is taken as a BSN (one random run in eleven
passes; bench/redaction.py measures what that costs, docs/redaction.md has the numbers), but
the US and Canadian nine-digit forms only after a word that names them ("SSN", "SIN", "ID"...).
A run that words or signs name as another number (an order's, an operand in code, the rest of a
phone number after "+34") is kept; longer runs carry a check digit and a date, which random
numbers rarely satisfy.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from stdnum.br import cpf
from stdnum.ca import sin
from stdnum.de import idnr
from stdnum.dk import cpr
from stdnum.es import dni, nie
from stdnum.fi import hetu
from stdnum.fr import nir
from stdnum.it import codicefiscale
from stdnum.nl import bsn
from stdnum.no import fodselsnummer
from stdnum.pl import pesel
from stdnum.se import personnummer

from detectors.redaction.numbers import in_code, named_otherwise
from detectors.redaction.spans import Kind, Span


@dataclass(frozen=True, slots=True)
class _Id:
    shape: re.Pattern[str]
    valid: Callable[[str], bool]
    kind: Kind = Kind.NATIONAL_ID
    context: re.Pattern[str] | None = None  # a word that must come just before
    bare: bool = False  # no word needed while bare numbers are taken


def _ssn(number: str) -> bool:
    digits = re.sub(r"\D", "", number)
    return (digits[:3] not in ("000", "666") and digits[3:5] != "00"
            and digits[5:] != "0000")


def _nuss(number: str) -> bool:  # Spain's social security number: mod 97 of the first ten
    digits = re.sub(r"\D", "", number)
    return int(digits[:10]) % 97 == int(digits[10:])


def _rvnr(number: str) -> bool:  # Germany's pension insurance number
    number = number.upper()
    digits = number[:8] + f"{ord(number[8]) - 64:02d}" + number[9:11]
    factors = (2, 1, 2, 5, 7, 1, 2, 1, 2, 1, 2, 1)
    total = sum(sum(divmod(int(d) * f, 10)) for d, f in zip(digits, factors, strict=True))
    return total % 10 == int(number[11])


def _nino(number: str) -> bool:  # UK National Insurance: the prefixes never issued
    prefix = number[:2].upper()
    return prefix not in ("BG", "GB", "NK", "KN", "TN", "NT") and prefix[1] != "O"


def _re(pattern: str, flags: int = 0) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w\-./])(?:{pattern})(?![\w]|[\-./]\d)", flags)


def _in_a_sequence(text: str, start: int, end: int) -> bool:
    """A value written in spaced groups that continues a longer run of numbers ("… 99 100
    101 102 …" is a sequence, not an id); a compact value beside a number is still one."""
    value = text[start:end]
    return " " in value and (
        (value[0].isdigit() and _DIGIT_BEFORE.search(text, max(0, start - 2), start) is not None)
        or (value[-1].isdigit() and _DIGIT_AFTER.match(text, end) is not None))


def _another_number(text: str, at: int) -> bool:
    """The words or signs before a bare run say it is some other number: an order's, an
    operand in code, or the rest of a phone number after its country code."""
    return (named_otherwise(text, at) or in_code(text, at)
            or _AFTER_A_COUNTRY_CODE.search(text, max(0, at - 12), at) is not None)


_DIGIT_BEFORE = re.compile(r"\d $")
# the rest of a phone number: "+34 946591520", "(+358) 997833828", "+49(0) 824217809"
_AFTER_A_COUNTRY_CODE = re.compile(r"\+\d{1,3}\)?[ \-]?(?:\(0\)[ \-]?)?$")
_DIGIT_AFTER = re.compile(r" \d")


def _words(pattern: str) -> re.Pattern[str]:
    return re.compile(rf"\b(?:{pattern})\b\W{{0,3}}(?:\w+\W{{1,3}}){{0,2}}$", re.IGNORECASE)


_SSN_WORDS = _words(r"ssn|ssns|social\s+security(?:\s+number)?|itin|taxpayer")
_ID_WORDS = _words(r"bsn|burgerservicenummer|sofi(?:nummer)?|sin|social|insurance|id|ids|"
                   r"identity|identification|national|citizen|personal|tax|number|no|nr|num|#")

_IDS = (
    _Id(_re(r"\d{3}(?P<s>[\- ])\d{2}(?P=s)\d{4}"), _ssn, Kind.SSN),
    _Id(_re(r"\d{9}"), _ssn, Kind.SSN, _SSN_WORDS),
    _Id(_re(r"[A-CEGHJ-PR-TW-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D]"), _nino),
    _Id(_re(r"[1-9]\d(?: ?\d{3}){3}"), idnr.is_valid),  # DE Steuer-ID
    _Id(_re(r"\d{2}[0-3]\d[01]\d{3}[A-Z]\d{3}", re.I), _rvnr),
    _Id(_re(r"[12] ?\d{2} ?\d{2} ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}", re.I), nir.is_valid),
    _Id(_re(r"\d{8}[ \-]?[A-Z]", re.I), dni.is_valid),
    _Id(_re(r"[XYZ][ \-]?\d{7}[ \-]?[A-Z]", re.I), nie.is_valid),
    _Id(_re(r"\d{2}[ /\-]?\d{8}[ /\-]?\d{2}"), _nuss),
    _Id(_re(r"[A-Z]{6}[\dLMNPQRSTUV]{2}[A-Z][\dLMNPQRSTUV]{2}[A-Z][\dLMNPQRSTUV]{3}[A-Z]",
            re.I), codicefiscale.is_valid),
    _Id(_re(r"\d{4}\.\d{2}\.\d{3}"), bsn.is_valid),
    _Id(_re(r"\d{9}"), bsn.is_valid, context=_ID_WORDS, bare=True),
    _Id(_re(r"\d{11}"), pesel.is_valid),
    _Id(_re(r"\d{3}\.\d{3}\.\d{3}-\d{2}|\d{11}"), cpf.is_valid),
    _Id(_re(r"(?:\d{2})?\d{6}[\-+]\d{4}"), personnummer.is_valid),
    _Id(_re(r"\d{6}[\-+A-FU-Y]\d{3}[\dA-Y]", re.I), hetu.is_valid),
    _Id(_re(r"\d{6} ?\d{5}"), fodselsnummer.is_valid),
    _Id(_re(r"\d{6}-\d{4}"), cpr.is_valid),
    _Id(_re(r"\d{3}[ \-]\d{3}[ \-]\d{3}"), sin.is_valid),
    _Id(_re(r"\d{9}"), sin.is_valid, context=_ID_WORDS),
)

# every id above has six digits at least, apart by one separator or letter at most
_GATE = re.compile(r"\d(?:[ .\-/+A-Za-z]?\d){5}")


def find_national_ids(text: str, bare: bool = True) -> Iterator[Span]:
    if not _GATE.search(text):
        return
    for spec in _IDS:
        for m in spec.shape.finditer(text):
            if (spec.context and not (spec.bare and bare)
                    and not spec.context.search(text, max(0, m.start() - 50), m.start())):
                continue
            if _in_a_sequence(text, m.start(), m.end()) or (
                    m.group().isdigit() and _another_number(text, m.start())):
                continue
            if spec.valid(m.group()):
                yield Span(m.start(), m.end(), spec.kind)
