"""Redaction: every kind is replaced by its own placeholder, overlapping finds never mangle
each other, and ordinary numbers (orders, dates, amounts, versions) survive."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from detectors.redact import redact
from detectors.redaction.config import RedactionConfig
from detectors.redaction.redactor import Redactor
from detectors.redaction.spans import Kind
from monitor.config import load_config
from monitor.core.errors import ConfigError


@pytest.mark.parametrize(("text", "expected"), [
    # secrets
    ("key sk-proj-abcdefghijklmnop1234567890", "key [SECRET]"),
    ("AKIAIOSFODNN7EXAMPLE", "[SECRET]"),
    ("token ghp_abcdefghijklmnopqrstuvwxyz0123456789", "token [SECRET]"),
    ("slack xoxb-1234567890-abcdefghij", "slack [SECRET]"),
    ("Authorization: Bearer abc.def-ghi_jkl123456", "Authorization: Bearer [SECRET]"),
    ("sha 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "sha [SECRET]"),
    ("blob dGhpcyBpcyBhIHNlY3JldCBrZXkgdmFsdWUxMjM0NTY3OA==", "blob [SECRET]"),
    ("api_key=abc123secretvalue", "api_key=[SECRET]"),
    # contact
    ("mail jane.doe+tag@example.co.uk now", "mail [EMAIL] now"),
    ("call +1 (555) 123-4567", "call [PHONE]"),
    ("call 555-123-4567 or 555.123.4567", "call [PHONE] or [PHONE]"),
    ("office (555) 123 4567", "office [PHONE]"),
    ("London +44 20 7946 0958, mobile 07700 900123", "London [PHONE], mobile [PHONE]"),
    ("Paris 03 64 60 83 77, Berlin 030 1234567", "Paris [PHONE], Berlin [PHONE]"),
    ("mi chiami al cellulare 3420837783", "mi chiami al cellulare [PHONE]"),
    ("server 10.20.30.40 and 2001:db8:85a3::8a2e:370:7334", "server [IP] and [IP]"),
    # money
    ("card 4111 1111 1111 1111", "card [CARD]"),
    ("card 5500-0000-0000-0004 and 378282246310005", "card [CARD] and [CARD]"),
    ("IBAN DE89 3704 0044 0532 0130 00 please", "IBAN [IBAN] please"),
    ("pay GB82WEST12345698765432", "pay [IBAN]"),
    # national ids
    ("my ssn is 123-45-6789", "my ssn is [SSN]"),
    ("social security number 123456789", "social security number [SSN]"),
    ("NI number AB 12 34 56 C", "NI number [NATIONAL_ID]"),
    ("mijn BSN is 214035797", "mijn BSN is [NATIONAL_ID]"),
    ("PESEL 01302982881", "PESEL [NATIONAL_ID]"),
    ("CPF 484.057.358-10", "CPF [NATIONAL_ID]"),
    ("DNI 73550819Q, NIE Z0095783Q", "DNI [NATIONAL_ID], NIE [NATIONAL_ID]"),
    ("codice fiscale BCCFRC15M25E852P", "codice fiscale [NATIONAL_ID]"),
    ("NIR 1 72 02 32 013 121 26", "NIR [NATIONAL_ID]"),
    # announced by their words
    ("my passport number is J49786907", "my passport number is [PASSPORT]"),
    ("driver's license no. D123-4567-8901", "driver's license no. [LICENCE]"),
    ("Hi, my name is Jane van der Berg.", "Hi, my name is [NAME]."),
    ("send it to 221B Baker Street, London", "send it to [ADDRESS], London"),
    ("Lieferung an Hauptstraße 5 bitte", "Lieferung an [ADDRESS] bitte"),
])
def test_each_kind_gets_its_own_placeholder(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize("text", [
    "card 4111 1111 1111 1112",  # fails the Luhn check: an order number, not a card
    "ssn 000-12-3456 is not issued",  # area 000 never is
    "IBAN DE89 3704 0044 0532 0130 01",  # fails mod 97
    "order 12345678 placed 2024-01-15 for $1,234.56 at 10:30",
    "order 3420837783 shipped",  # a valid Italian mobile, but nothing says it is a phone
    "ticket 123456789 and invoice 987654321",  # nine digits, no identity word
    "between 2019 2020 and 2021",
    "I topped up 20 GBP but my balance is 1500",
    "pip install numpy==1.26.4 into /usr/local/lib/python3.11/site-packages",
    "internationalization_and_localization_settings_module",
    "served version 1.2.3.4 on 1.2.3.4.5, in 1999-2005 at 12:30:45",
    "use std::vector and x[1::2] in C++ and Python",
    "I want to pass 12345678 to the function",
    "This Is A Title In Capitals",
])
def test_ordinary_text_and_numbers_are_kept(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize(("text", "expected"), [
    # nothing in the sentence says what the value is
    ("6114980364 where can i get my w2 from?", "[PHONE] where can i get my w2 from?"),
    ("has my card arrived 3420837783", "has my card arrived [PHONE]"),  # Italian mobile
    ("40748337, thanks", "[PHONE], thanks"),  # Norwegian, eight digits
    ("virtual card please 214035797", "virtual card please [NATIONAL_ID]"),  # a BSN
    ("I moved. 0640993408, thanks", "I moved. [PHONE], thanks"),  # a trunk prefix
    ("my account. 04 56 47 46 41, thanks", "my account. [PHONE], thanks"),
    # written just after another number, or after an ordinal or a time
    ("is 126 divisible by 8 4489177347421065", "is 126 divisible by 8 [CARD]"),
    ("switch my pin to 1234 01632 960 562", "switch my pin to 1234 [PHONE]"),
    ("for march 22nd +44(0)117 496 0846", "for march 22nd [PHONE]"),
    ("busy at 5pm +55 92 5037-2449", "busy at 5pm [PHONE]"),
    ("send $20 +34 946591520", "send $20 [PHONE]"),  # the BSN check never splits it
    # the shapes of other countries
    ("ring 08-123 45 67 or 010-1234567", "ring [PHONE] or [PHONE]"),
    ("1-579-958-1325 and 1 (510) 336-8374", "[PHONE] and [PHONE]"),
    # after a word that says it is a phone, any number is one, valid or not
    ("call me on 00055787764.", "call me on [PHONE]."),
])
def test_bare_values_are_found_without_a_word(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize("text", [
    "order 3420837783 and invoice no. 214035797",  # named as something else
    "ISBN-10: 0231130104, or ISBN 978-0-12-086699-1 for my phone",
    "request 76430492-ebf1-42d1-ba9e-074efcc6c647 failed",  # a UUID
    "L = 13591409; x += 545140134 mod 33554393 for my phone",  # code
    "released 20151125, sold 1000000 copies, counted 123456789 then 987654321",
    "viewBox=\"0 0 100 100\" and 1 2 3 4 5 6 7 8 9 10 11 12",
    "between 1956-2002 and 1956 2002, call me",
])
def test_numbers_that_something_names_or_shapes_are_kept(text: str) -> None:
    assert redact(text) == text


def test_bare_numbers_can_be_kept_where_the_deployment_prefers_them() -> None:
    keep = Redactor.from_config(RedactionConfig(bare_numbers=False))
    assert keep.redact("virtual card please 214035797") == "virtual card please 214035797"
    assert keep.redact("6114980364 where is my w2") == "6114980364 where is my w2"
    assert keep.redact("mijn BSN is 214035797, bel 0612345678") == (
        "mijn BSN is [NATIONAL_ID], bel [PHONE]")


def test_an_iban_is_never_half_eaten_by_the_phone_pattern() -> None:
    # the bug that brought this module: "DE89 3704 [PHONE] 00"
    text = "please send to DE89 3704 0044 0532 0130 00 or call 030 1234567"
    assert redact(text) == "please send to [IBAN] or call [PHONE]"


def test_only_the_configured_kinds_are_redacted() -> None:
    redactor = Redactor.from_config(RedactionConfig(kinds=(Kind.EMAIL,)))
    assert redactor.redact("a@b.org 123-45-6789") == "[EMAIL] 123-45-6789"


def test_patterns_of_the_users_own_win_overlaps() -> None:
    config = RedactionConfig.model_validate({"patterns": [
        {"name": "employee", "regex": r"EMP-\d{6}", "placeholder": "[EMPLOYEE]"},
        {"name": "ticket", "regex": r"TCK-\d+-\d+-\d+"}]})
    redactor = Redactor.from_config(config)
    assert (redactor.redact("EMP-123456 filed TCK-555-123-4567")
            == "[EMPLOYEE] filed [REDACTED]")


@pytest.mark.parametrize(("pattern", "message"), [
    ({"name": "broken", "regex": "EMP-(\\d"}, "pattern 'broken': regex is not valid"),
    ({"name": "empty", "regex": "x*"}, "pattern 'empty': regex matches the empty string"),
    ({"name": "bad name!", "regex": "x"}, "name"),
])
def test_a_bad_pattern_is_a_config_error_naming_it(pattern: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RedactionConfig.model_validate({"patterns": [pattern]})


def test_unknown_kinds_and_regions_are_config_errors() -> None:
    with pytest.raises(ValidationError, match="kinds"):
        RedactionConfig.model_validate({"kinds": ["email", "dna"]})
    with pytest.raises(ValidationError, match=r"unknown region codes.*got: XX"):
        RedactionConfig.model_validate({"phone_regions": ["US", "XX"]})


def test_phone_regions_decide_which_national_formats_are_known() -> None:
    us_only = Redactor.from_config(RedactionConfig(phone_regions=("US",)))
    text = "il mio numero è 3420837783"
    assert us_only.redact(text) == text
    assert redact(text) == "il mio numero è [PHONE]"


def test_norway_in_the_phone_regions_is_not_a_boolean(tmp_path: Path) -> None:
    path = tmp_path / "driftwatch.yaml"
    path.write_text("redaction: {phone_regions: [US, NO]}\n")
    assert load_config(path).redaction.phone_regions == ("US", "NO")


def test_a_bad_pattern_in_the_config_file_names_its_path(tmp_path: Path) -> None:
    path = tmp_path / "driftwatch.yaml"
    path.write_text("redaction:\n  patterns:\n    - {name: broken, regex: 'EMP-(\\d'}\n")
    with pytest.raises(ConfigError, match=r"redaction\.patterns\.0: pattern 'broken': regex"):
        load_config(path)
