"""Recall of the redactor per kind and locale, what it hides of ordinary text, and its speed.

Values come from Faker (seeded) in a dozen locales and go into real sentences from corpora/
(banking77 and clinc150 questions), either announced by a label ("my IBAN is …", "mijn BSN
is …") or bare, with nothing in the sentence saying what they are. A value counts as caught
when none of its pieces (the parts of three characters or more that the sentence and its
label did not contain) is left in the output, placeholders aside. Untouched real texts from
every corpus measure false redaction: the share of texts the redactor changes at all, by the
kind that fired. Ordinary numbers (order numbers, dates, amounts, versions, times) measure
what must survive; a plain number that no word names measures what `--keep-bare-numbers`
(redaction.bare_numbers: false) would keep.

    PYTHONPATH=. .venv/bin/python bench/redaction.py [--n 200] [--seed 7] [--keep-bare-numbers]

Prints Markdown tables. Needs Faker (the dev extra).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from faker import Faker

from detectors.redaction.redactor import Redactor
from detectors.redaction.spans import Kind

CORPORA = Path(__file__).resolve().parent.parent / "corpora"
LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "pl_PL", "pt_BR",
           "sv_SE", "fi_FI", "no_NO", "en_CA")
# the label a user would write before a national id, and how Faker makes one
NATIONAL_IDS: dict[str, tuple[str, Callable[[Faker], str]]] = {
    "en_US": ("social security number", lambda f: f.ssn()),
    # Faker's en_GB ssn() is the dummy "ZZ …T" form; the real shape: prefix, six digits, A-D
    "en_GB": ("National Insurance number", lambda f: _nino(f)),
    "de_DE": ("Rentenversicherungsnummer", lambda f: f.rvnr()),
    "fr_FR": ("numéro de sécurité sociale", lambda f: f.ssn()),
    "es_ES": ("DNI", lambda f: f.random_element([f.nif, f.nie, f.nuss])()),
    "it_IT": ("codice fiscale", lambda f: f.ssn()),
    "nl_NL": ("BSN", lambda f: f.ssn()),
    "pl_PL": ("PESEL", lambda f: f.pesel()),
    "pt_BR": ("CPF", lambda f: f.random_element([f.cpf, f.ssn])()),
    "sv_SE": ("personnummer", lambda f: f.ssn()),
    "fi_FI": ("henkilötunnus", lambda f: f.ssn()),
    "no_NO": ("fødselsnummer", lambda f: f.ssn()),
    "en_CA": ("SIN", lambda f: f.ssn()),
}


def _nino(f: Faker) -> str:
    prefix = f.random_element([a + b for a in "ABCEGHJKLMNPRSTWXYZ" for b in "ABCEGHJKLMNPRSTWXYZ"
                               if a + b not in ("BG", "GB", "NK", "KN", "TN", "NT")])
    return f.numerify(f.random_element([f"{prefix}######", f"{prefix} ## ## ##"])) + (
        f.random_element(" ") * f.boolean() + f.random_element("ABCD"))


def _iban(f: Faker) -> str:
    value = f.iban()
    return " ".join(value[i:i + 4] for i in range(0, len(value), 4)) if f.boolean() else value


def _secret(f: Faker) -> str:
    alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    pick = f.random_element(["openai", "aws", "github", "slack", "stripe", "jwt", "hex"])
    body = "".join(f.random_elements(alnum, length=40))
    return {"openai": f"sk-proj-{body}", "aws": "AKIA" + body[:16].upper(),
            "github": f"ghp_{body[:36]}", "slack": f"xoxb-{f.msisdn()}-{body[:24]}",
            "stripe": f"sk_live_{body[:24]}", "hex": f.sha256(),
            "jwt": f"eyJ{body[:20]}.eyJ{body[20:]}.{body[5:30]}"}[pick]


def _digits(f: Faker) -> str:
    return str(f.random_number(f.random_int(6, 12), True))


@dataclass(frozen=True)
class Generator:
    kind: Kind
    label: str  # how a user announces it
    make: Callable[[Faker], str]
    locales: tuple[str, ...] = LOCALES


GENERATORS = (
    Generator(Kind.EMAIL, "email me at", lambda f: f.email()),
    Generator(Kind.PHONE, "call me on", lambda f: f.phone_number()),
    Generator(Kind.CARD, "my card number is", lambda f: f.credit_card_number()),
    Generator(Kind.IBAN, "my IBAN is", _iban),
    Generator(Kind.IP, "my IP address is", lambda f: f.ipv4() if f.boolean() else f.ipv6()),
    Generator(Kind.SECRET, "my API key is", _secret, ("en_US",)),
    Generator(Kind.SSN, "my social security number is", lambda f: f.ssn(), ("en_US",)),
    Generator(Kind.NATIONAL_ID, "", lambda f: "", tuple(k for k in NATIONAL_IDS if k != "en_US")),
    Generator(Kind.PASSPORT, "my passport number is", lambda f: f.passport_number()),
    Generator(Kind.NAME, "my name is", lambda f: f.name()),
    Generator(Kind.ADDRESS, "I live at", lambda f: f.street_address()),
)
ORDINARY: dict[str, Callable[[Faker], str]] = {
    "order number (6-12 digits)": lambda f: f"order {_digits(f)}",
    "date": lambda f: f.random_element([f.date, lambda: f.date("%d.%m.%Y"),
                                        lambda: f.date("%m/%d/%Y")])(),
    "time": lambda f: f.time(),
    "amount": lambda f: f.pricetag(),
    "version": lambda f: f"v{f.random_int(0, 20)}.{f.random_int(0, 40)}.{f.random_int(0, 99)}",
    "year range": lambda f: f"{f.random_int(1950, 2000)}-{f.random_int(2001, 2030)}",
    "ISBN-13": lambda f: f.isbn13(),
    "UUID": lambda f: f.uuid4(),
    "number in code (x = 6-12 digits)": lambda f: f"x = {_digits(f)}",
}
# no word says what the number is: a bare run of 8-12 digits is as likely a phone number or a
# BSN as anything, and the redactor takes it (fail closed); this row is the price, not a target
BARE_NUMBER = ("plain number, no word (6-12 digits)",
               lambda f: _digits(f))


def sentences() -> list[str]:
    return [r["text"] for name in ("banking77", "clinc150") for r in _rows(name)]


def real_texts() -> Iterator[tuple[str, str]]:
    for name in ("banking77", "clinc150", "arena_hard_prompts", "arena_hard_responses",
                 "toxicity", "jailbreak"):
        for r in _rows(name):
            yield name, r["text"]
    for r in _rows("long_texts"):
        yield "long_texts", r["prompt"]
        yield "long_texts", r["completion"]


def _rows(name: str) -> list[dict[str, str]]:
    with (CORPORA / f"{name}.jsonl").open() as f:
        return [json.loads(line) for line in f if line.strip()]


def carry(sentence: str, value: str, label: str, rng: random.Random) -> str:
    """The sentence with the value in it: announced by `label`, or bare (label empty)."""
    sentence = sentence.rstrip(" ?.!")
    if label:
        return rng.choice([f"{sentence}, {label} {value}.", f"{label[0].upper()}{label[1:]} "
                           f"{value}. {sentence}?"])
    return rng.choice([f"{sentence} {value}", f"{value} {sentence}?",
                       f"{sentence}. {value}, thanks"])


def pieces(value: str, sentence: str) -> list[str]:
    words = re.findall(r"[^\s,.;:()/\-]{3,}", value)
    return [w for w in words if w not in sentence] or [value]


def caught(redactor: Redactor, text: str, value: str, sentence: str) -> bool:
    # without the placeholders: Faker's "GB14 IBAN 9491 …" has the piece "IBAN" in it
    out = re.sub(r"\[[A-Z_]+\]", " ", redactor.redact(text))
    return not any(p in out for p in pieces(value, sentence))


def recall(redactor: Redactor, n: int, seed: int) -> dict[tuple[Kind, str], tuple[int, int, int]]:
    """(kind, locale) -> (n, caught with a label, caught bare)."""
    rng = random.Random(seed)
    texts = sentences()
    found: dict[tuple[Kind, str], tuple[int, int, int]] = {}
    for g in GENERATORS:
        for i, locale in enumerate(g.locales):
            fake = Faker(locale)
            fake.seed_instance(seed * 1000 + i)
            label, make = ((NATIONAL_IDS[locale][0] if g.kind == Kind.NATIONAL_ID else g.label),
                           (NATIONAL_IDS[locale][1] if g.kind == Kind.NATIONAL_ID else g.make))
            if g.kind == Kind.NATIONAL_ID:
                label = f"my {label} is"
            hits = [0, 0]
            for _ in range(n):
                value, sentence = make(fake), rng.choice(texts)
                for j, lab in enumerate((label, "")):
                    hits[j] += caught(redactor, carry(sentence, value, lab, rng), value,
                                      f"{sentence} {lab}")
            found[(g.kind, locale)] = (n, hits[0], hits[1])
    return found


def survival(redactor: Redactor, n: int, seed: int) -> dict[str, float]:
    rng, fake = random.Random(seed), Faker("en_US")
    fake.seed_instance(seed)
    texts = sentences()
    kept = {}
    for name, make in (*ORDINARY.items(), BARE_NUMBER):
        ok = 0
        for _ in range(n):
            text = f"{rng.choice(texts).rstrip(' ?.!')} ({make(fake)})"
            ok += redactor.redact(text) == text
        kept[name] = ok / n
    return kept


def false_redaction(redactor: Redactor) -> tuple[dict[str, tuple[int, int]], Counter[str], float]:
    """corpus -> (texts, changed), which kinds fired, µs per text."""
    per: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    kinds: Counter[str] = Counter()
    spent = 0.0
    for corpus, text in real_texts():
        start = time.perf_counter()
        spans = redactor.spans(text)
        spent += time.perf_counter() - start
        per[corpus][0] += 1
        if spans:
            per[corpus][1] += 1
            kinds.update({s.kind.value for s in spans})
    total = sum(v[0] for v in per.values())
    return {k: (v[0], v[1]) for k, v in per.items()}, kinds, spent / total * 1e6


def _pct(x: float) -> str:
    return f"{x:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="values per kind and locale")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep-bare-numbers", action="store_true",
                        help="measure with redaction.bare_numbers: false")
    args = parser.parse_args()
    redactor = Redactor(bare_numbers=False) if args.keep_bare_numbers else Redactor()

    found = recall(redactor, args.n, args.seed)
    print(f"## Recall per kind (all locales, {args.n} values per locale and carrier)\n")
    print("| kind | locales | with a label | bare |\n|---|---:|---:|---:|")
    for g in GENERATORS:
        rows = [v for (k, _), v in found.items() if k == g.kind]
        total = sum(r[0] for r in rows)
        print(f"| {g.kind.value} | {len(rows)} | {_pct(sum(r[1] for r in rows) / total)} | "
              f"{_pct(sum(r[2] for r in rows) / total)} |")
    print("\n## Recall per kind and locale (with a label / bare)\n")
    kinds = [g.kind for g in GENERATORS]
    print("| locale | " + " | ".join(k.value for k in kinds) + " |")
    print("|---|" + "---:|" * len(kinds))
    for locale in LOCALES:
        cells = []
        for k in kinds:
            v = found.get((k, locale))
            cells.append(f"{v[1] / v[0]:.2f} / {v[2] / v[0]:.2f}" if v else "")
        print(f"| {locale} | " + " | ".join(cells) + " |")

    print("\n## Ordinary numbers that must survive (share kept unchanged)\n")
    print("| value | kept |\n|---|---:|")
    for name, share in survival(redactor, args.n * 5, args.seed).items():
        print(f"| {name} | {_pct(share)} |")

    per, fired, us = false_redaction(redactor)
    total, changed = sum(v[0] for v in per.values()), sum(v[1] for v in per.values())
    print("\n## False redaction on untouched real texts (share of texts changed)\n")
    print("| corpus | texts | changed | rate |\n|---|---:|---:|---:|")
    for corpus, (n, c) in per.items():
        print(f"| {corpus} | {n} | {c} | {_pct(c / n)} |")
    print(f"| **all** | {total} | {changed} | {_pct(changed / total)} |")
    print("\nTexts in which each kind fired: "
          + ", ".join(f"{k} {v}" for k, v in fired.most_common()))
    print(f"\nSpeed: {us:.0f} µs per real text (mean over {total} texts, one core).")


if __name__ == "__main__":
    main()
