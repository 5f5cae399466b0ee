"""Identifiers with no checksum, found by the words that introduce them: passport and driving
licence numbers, people's names after "my name is" (and its equivalents), street addresses by
their street words.

These are cheap offline recognisers, not a language model: they catch what the text announces
and miss a bare name or address. bench/redaction.py measures how much they catch and how much
ordinary text they would hide; NOTES.md has the numbers behind the choice of defaults.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from detectors.redaction.spans import Kind, Span

_ID_VALUE = r"(?:no\.?|nr\.?|number|num[ée]ro|n[úu]mero|nummer|numer|#)?\s*[:=]?\s*(?:is\s+)?"
_PASSPORT = re.compile(
    r"\b(?:passport|reisepass|passeport|pasaporte|passaporto|paspoort|paszport|"
    r"passaporte)\s*" + _ID_VALUE + r"(?P<v>(?=[A-Z]*\d(?:[A-Z]*\d){2})[A-Z0-9]{6,10})\b",
    re.IGNORECASE)
_LICENCE = re.compile(
    r"\b(?:driv(?:er'?s|ing)\s+licen[cs]e|licen[cs]e|f[üu]hrerschein|permis\s+de\s+conduire|"
    r"permiso\s+de\s+conducir|carnet\s+de\s+conducir|patente|rijbewijs|prawo\s+jazdy|cnh)\s*"
    + _ID_VALUE + r"(?P<v>(?=[A-Z0-9\-]*\d{4})[A-Z0-9][A-Z0-9\-]{4,17}[A-Z0-9])\b",
    re.IGNORECASE)
_WORD = r"[A-ZÀ-ÖØ-ÞŁŚŻŹĆŃ][^\W\d_]+(?:'[^\W\d_]+)?"
# titles people put before their name: "my name is Dott. Irma Mazzini", "pani Róża Sajnóg"
_TITLE = (r"(?:(?:Univ\.\s?)?Prof\.|Dr\.|Ing\.|Dott\.(?:ssa)?|Sig\.(?:ra)?|Srt?a\.|Sr\.|"
          r"Mr\.?|Mrs\.?|Ms\.?|Herr|Frau|Mme\.?|[Pp]ani?|Dhr\.|Mevr\.)[ \t]+")
_NAME = re.compile(
    r"(?:(?:^|(?<=[\n,;(]))\s*(?i:(?:full\s+)?name\s*:)\s*"
    r"|\b(?i:my name is|my name's|i am called|je m'appelle|mon nom est|ich hei(?:ß|ss)e|"
    r"mein name ist|me llamo|mi nombre es|mi chiamo|il mio nome è|mijn naam is|ik heet|"
    r"nazywam się|mam na imię|meu nome é|me chamo)\s+"
    r"|\b(?:Mr|Mrs|Ms|Dr|Herr|Frau|Mme|Sra|Sig|Sig\.ra|Dhr|Mevr)\.?[ \t]+)"
    rf"(?:{_TITLE})*(?P<v>{_WORD}"
    rf"(?:[ \-](?:(?:van|von|de|der|den|da|di|del|dos|du|la|le)\s+)*{_WORD}){{0,3}})"
    r"(?![\w\-])")
_STREET_EN = (r"Street|St|Avenue|Ave|Road|Rd|Lane|Ln|Boulevard|Blvd|Drive|Dr|Court|Ct|Way|"
              r"Place|Pl|Square|Sq|Terrace|Parkway|Pkwy|Circle|Cir|Highway|Hwy|Crescent|Close|"
              r"Gardens|Grove|Row|Walk|Trail|Mews|Hill|Park|Plaza|Loop|Ridge|Crossing|Pike|"
              r"Heights|Village|Green|Route|Alley|Port|Station|Estates|Mission|Junction|Pines?")
_ADDRESS = re.compile(
    # 12 Baker Street (Apt. 4), 0487 Smith Pines Suite 123
    rf"\b\d{{1,5}}[A-Za-z]?[ \t]+(?:{_WORD}[ \t]+){{1,3}}(?:{_STREET_EN})s?\b\.?"
    r"(?:,?[ \t]+(?:Apt|Apartment|Suite|Unit|Flat)\.?[ \t]+\d+[A-Za-z]?)?"
    # Hauptstraße 5, Keizersgracht 123, ul. Długa 7, Via Roma 12, Calle Mayor 3
    r"|\b[A-ZÄÖÜ][\wäöüß\-]*(?:straße|strasse|str\.|weg|gasse|platz|allee|damm|straat|"
    r"laan|plein|gracht|kade|singel|steeg)[ \t]+\d{1,4}[a-zA-Z]?\b"
    r"|\b(?:[Uu]l\.|[Uu]lica|[Aa]l\.|[Aa]leja|[Vv]ia|[Vv]iale|[Pp]iazza|[Cc]orso|[Cc]alle|"
    r"[Aa]venida|[Aa]vda\.|[Pp]laza|[Pp]aseo|[Cc]amino|[Rr]ua|[Tt]ravessa|[Rr]onda|[Cc]/)"
    rf"[ \t]+(?:(?:de|del|la|las|los|da|do|dos|das|di|della)[ \t]+)*{_WORD}(?:[ \t]+{_WORD}){{0,3}}"
    r",?[ \t]+(?:n[º°o]\.?[ \t]*)?\d{1,4}[a-zA-Z]?\b"
    # 12 rue de la Paix, 5 avenue Foch
    r"|\b\d{1,4}(?:[ \t]?(?:bis|ter))?,?[ \t]+(?:rue|avenue|av\.|boulevard|bd|chemin|allée|place|"
    rf"impasse|quai|route|cours)[ \t]+(?:(?:de|du|des|la|le|l'|d')[ \t]*)*"
    rf"{_WORD}(?:[ \-]{_WORD}){{0,3}}")


def find_documents(text: str) -> Iterator[Span]:
    for pattern, kind in ((_PASSPORT, Kind.PASSPORT), (_LICENCE, Kind.LICENCE)):
        for m in pattern.finditer(text):
            yield Span(m.start("v"), m.end("v"), kind)


def find_names(text: str) -> Iterator[Span]:
    for m in _NAME.finditer(text):
        yield Span(m.start("v"), m.end("v"), Kind.NAME)


def find_addresses(text: str) -> Iterator[Span]:
    for m in _ADDRESS.finditer(text):
        yield Span(m.start(), m.end(), Kind.ADDRESS)
