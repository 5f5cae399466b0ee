"""The `redaction:` config section: which kinds leave the daemon redacted, the user's own
patterns with their placeholders, and the regions whose national phone formats are known.

Example::

    redaction:
      kinds: [secret, email, phone, card, iban, ssn, national_id, ip]
      patterns:
        - {name: employee_id, regex: "EMP-\\\\d{6}", placeholder: "[EMPLOYEE_ID]"}
      phone_regions: [US, GB, DE]
"""

from __future__ import annotations

import re

import phonenumbers
from pydantic import Field, field_validator, model_validator

from detectors.redaction.phones import DEFAULT_REGIONS
from detectors.redaction.spans import Kind
from monitor.core.config import Section

# every kind; names and addresses are found only where the text announces them (NOTES.md has
# the measurement), but they are cheap and rarely wrong. Names, so the default reads as YAML.
DEFAULT_KINDS = tuple(k.value for k in Kind)


class RedactionPattern(Section):
    """One pattern of the user's own: every match becomes `placeholder`."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")
    regex: str = Field(min_length=1)
    placeholder: str = Field(default="[REDACTED]", min_length=1, max_length=64)

    @model_validator(mode="after")
    def _compiles(self) -> RedactionPattern:
        try:
            compiled = re.compile(self.regex)
        except re.error as exc:
            raise ValueError(f"pattern {self.name!r}: regex is not valid ({exc}), "
                             f"got: {self.regex!r}") from None
        if compiled.fullmatch(""):
            raise ValueError(f"pattern {self.name!r}: regex matches the empty string, "
                             f"got: {self.regex!r}")
        return self


class RedactionConfig(Section):
    kinds: tuple[Kind, ...] = Field(default=DEFAULT_KINDS, validate_default=True)
    patterns: tuple[RedactionPattern, ...] = ()
    phone_regions: tuple[str, ...] = DEFAULT_REGIONS
    # a run of 8-12 digits that no word names is taken when it could be a phone number or a
    # BSN (fail closed); false keeps such numbers and takes only the shapes and named ones
    bare_numbers: bool = True

    @field_validator("phone_regions", mode="before")
    @classmethod
    def _norway(cls, value: object) -> object:
        # YAML 1.1 reads a bare NO as false: [US, NO] means Norway, not a boolean
        if isinstance(value, list | tuple):
            return tuple("NO" if v is False else v for v in value)
        return value

    @field_validator("phone_regions")
    @classmethod
    def _known_regions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [r for r in value if r not in phonenumbers.SUPPORTED_REGIONS]
        if unknown:
            raise ValueError(f"unknown region codes (ISO 3166 alpha-2, upper case), "
                             f"got: {', '.join(unknown)}")
        return value

    @field_validator("patterns")
    @classmethod
    def _unique_names(cls, value: tuple[RedactionPattern, ...]) -> tuple[RedactionPattern, ...]:
        names = [p.name for p in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"pattern names must be unique, got twice: {', '.join(twice)}")
        return value
