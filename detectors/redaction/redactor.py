"""The one redaction path: a `Redactor` runs the finder of every enabled kind (and the user's
own patterns) over the original text, settles overlaps so that one kind never eats part of
another, and puts each kind's placeholder in place of what it found.

Built once from the `redaction:` config at the composition root; `detectors.redact.redact`
uses one built from the defaults.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial

from detectors.redaction.config import RedactionConfig
from detectors.redaction.context import find_addresses, find_documents, find_names
from detectors.redaction.finance import find_cards, find_ibans
from detectors.redaction.national import find_national_ids
from detectors.redaction.network import find_emails, find_ips
from detectors.redaction.phones import DEFAULT_REGIONS, find_phones
from detectors.redaction.secrets import find_secrets
from detectors.redaction.spans import PRECEDENCE, Finder, Kind, Span, resolve, substitute

_FINDERS: dict[Kind, Finder] = {
    Kind.SECRET: find_secrets, Kind.EMAIL: find_emails, Kind.CARD: find_cards,
    Kind.IBAN: find_ibans, Kind.IP: find_ips, Kind.PASSPORT: find_documents,
    Kind.LICENCE: find_documents, Kind.NAME: find_names, Kind.ADDRESS: find_addresses,
}
_USER = -1  # the user's own patterns outrank every built-in kind


@dataclass(frozen=True, slots=True)
class _UserPattern:
    regex: re.Pattern[str]
    placeholder: str


@dataclass(frozen=True)
class Redactor:
    """Replaces personal data and secrets in texts that leave the daemon.

    `kinds` are the built-in kinds to redact; `patterns` the user's own (regex, placeholder)
    pairs, which win any overlap; `bare_numbers` whether a run of digits that no word names
    is taken when it could be a phone number or a BSN. Pure and thread-safe: it keeps no
    state between calls.
    """

    kinds: frozenset[Kind] = frozenset(Kind)
    patterns: tuple[tuple[str, str], ...] = ()
    phone_regions: tuple[str, ...] | None = None
    bare_numbers: bool = True
    _finders: tuple[Finder, ...] = field(init=False, repr=False, compare=False)
    _user: tuple[_UserPattern, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        own: dict[Kind, Finder] = {
            Kind.PHONE: partial(find_phones, regions=self.phone_regions or DEFAULT_REGIONS,
                                bare=self.bare_numbers)}
        own[Kind.SSN] = own[Kind.NATIONAL_ID] = partial(find_national_ids, bare=self.bare_numbers)
        finders: list[Finder] = []
        for kind in PRECEDENCE:
            finder = own.get(kind, _FINDERS.get(kind))
            if kind in self.kinds and finder and finder not in finders:
                finders.append(finder)
        object.__setattr__(self, "_finders", tuple(finders))
        object.__setattr__(self, "_user", tuple(
            _UserPattern(re.compile(regex), placeholder) for regex, placeholder in self.patterns))

    @classmethod
    def from_config(cls, config: RedactionConfig) -> Redactor:
        return cls(kinds=frozenset(config.kinds),
                   patterns=tuple((p.regex, p.placeholder) for p in config.patterns),
                   phone_regions=config.phone_regions, bare_numbers=config.bare_numbers)

    def redact(self, text: str) -> str:
        """The text with every find replaced by its kind's placeholder."""
        return substitute(text, self.spans(text))

    __call__ = redact

    def spans(self, text: str) -> list[Span]:
        """What would be redacted: non-overlapping spans in text order."""
        return resolve(self._find(text), self._rank)

    def _find(self, text: str) -> Iterator[Span]:
        for user in self._user:
            for m in user.regex.finditer(text):
                if m.end() > m.start():
                    yield Span(m.start(), m.end(), Kind.SECRET, user.placeholder)
        for finder in self._finders:
            yield from (s for s in finder(text) if s.kind in self.kinds)

    @staticmethod
    def _rank(span: Span) -> int:
        return _USER if span.placeholder else PRECEDENCE.index(span.kind)
