"""The personal-data gate: nothing that looks like a person's data leaves the node.

Detectors run on every text of a record's shareable projection: e-mail addresses (also written
"name [at] domain"), phone numbers in national or international format for every EU numbering
plan, IBANs, national identity numbers, and the names of people this node knows (contact points,
users, study-visit participants). Names are matched after case, accent and look-alike-letter
folding, in Latin, Greek and Cyrillic script and in Latin transliteration, and with inflected
endings (Παπαδόπουλος / Παπαδόπουλου, Петров / Петрова). A hit holds the record for review.
The hub runs the same detectors on import.
"""

import importlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

import phonenumbers
from stdnum import iban

from federation.projection import text_fields
from node.text import fold

EU_REGIONS = (
    "AT",
    "BE",
    "BG",
    "CY",
    "CZ",
    "DE",
    "DK",
    "EE",
    "ES",
    "FI",
    "FR",
    "GR",
    "HR",
    "HU",
    "IE",
    "IT",
    "LT",
    "LU",
    "LV",
    "MT",
    "NL",
    "PL",
    "PT",
    "RO",
    "SE",
    "SI",
    "SK",
)
# Personal identity numbers of EU member states that python-stdnum validates (check digits).
NATIONAL_IDS = (
    "bg.egn",
    "gr.amka",
    "fr.nir",
    "pt.cc",
    "es.dni",
    "es.nie",
    "it.codicefiscale",
    "nl.bsn",
    "be.nn",
    "dk.cpr",
    "se.personnummer",
    "fi.hetu",
    "ee.ik",
    "lt.asmens",
    "lv.pk",
    "pl.pesel",
    "ro.cnp",
    "cz.rc",
    "sk.rc",
    "si.emso",
    "hr.oib",
    "ie.pps",
    "de.idnr",
    "cy.vat",
)
EMAIL = re.compile(
    r"[\w.+-]+\s*(?:@|＠|\[\s*at\s*\]|\(\s*at\s*\)|\{\s*at\s*\}|\s+at\s+(?=[\w-]+\s*(?:\[|\()\s*dot))"
    r"\s*[\w-]+(?:\s*(?:\.|\[\s*dot\s*\]|\(\s*dot\s*\)|\{\s*dot\s*\})\s*[\w-]+)+",
    re.IGNORECASE,
)
IBAN_CANDIDATE = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b", re.IGNORECASE)
ID_CANDIDATE = re.compile(
    r"(?<![\w-])[A-Z0-9](?:[A-Z0-9./ -]{4,22})[A-Z0-9](?![\w-])", re.IGNORECASE
)
WORD = re.compile(r"[^\W\d_]+")
# Letters of one script that look like letters of another: folded to one form, so a name
# typed with a Greek or Cyrillic look-alike inside a Latin word is still recognised.
CONFUSABLES = str.maketrans(
    {
        "α": "a",
        "β": "b",
        "ε": "e",
        "η": "n",
        "ι": "i",
        "κ": "k",
        "μ": "m",
        "ν": "v",
        "ο": "o",
        "ρ": "p",
        "τ": "t",
        "υ": "y",
        "χ": "x",
        "ζ": "z",
        "а": "a",
        "в": "b",
        "е": "e",
        "к": "k",
        "м": "m",
        "н": "h",
        "о": "o",
        "р": "p",
        "с": "c",
        "т": "t",
        "у": "y",
        "х": "x",
        "і": "i",
        "ј": "j",
        "ѕ": "s",
    }
)
GREEK_LATIN = {
    "α": "a",
    "β": "v",
    "γ": "g",
    "δ": "d",
    "ε": "e",
    "ζ": "z",
    "η": "i",
    "θ": "th",
    "ι": "i",
    "κ": "k",
    "λ": "l",
    "μ": "m",
    "ν": "n",
    "ξ": "x",
    "ο": "o",
    "π": "p",
    "ρ": "r",
    "σ": "s",
    "τ": "t",
    "υ": "y",
    "φ": "f",
    "χ": "ch",
    "ψ": "ps",
    "ω": "o",
}
GREEK_DIGRAPHS = (
    ("ου", "ou"),
    ("αι", "ai"),
    ("ει", "ei"),
    ("οι", "oi"),
    ("μπ", "b"),
    ("ντ", "nt"),
    ("γκ", "gk"),
    ("αυ", "av"),
    ("ευ", "ev"),
)
BULGARIAN_LATIN = {
    "а": "a",
    "б": "b",
    "в": "v",
    "г": "g",
    "д": "d",
    "е": "e",
    "ж": "zh",
    "з": "z",
    "и": "i",
    "й": "y",
    "к": "k",
    "л": "l",
    "м": "m",
    "н": "n",
    "о": "o",
    "п": "p",
    "р": "r",
    "с": "s",
    "т": "t",
    "у": "u",
    "ф": "f",
    "х": "h",
    "ц": "ts",
    "ч": "ch",
    "ш": "sh",
    "щ": "sht",
    "ъ": "a",
    "ь": "y",
    "ю": "yu",
    "я": "ya",
}
# Inflected endings stripped before names are compared (Greek cases, Slavic gender and number,
# Latin transliterations of both).
ENDINGS = sorted(
    [
        "οσ",
        "ου",
        "ησ",
        "ασ",
        "εσ",
        "ων",
        "ο",
        "η",
        "α",
        "σ",
        "ова",
        "ева",
        "ови",
        "еви",
        "ов",
        "ев",
        "ска",
        "ски",
        "ина",
        "а",
        "я",
        "и",
        "о",
        "е",
        "os",
        "ou",
        "is",
        "as",
        "es",
        "us",
        "ova",
        "eva",
        "ov",
        "ev",
        "a",
        "e",
        "i",
        "o",
        "s",
    ],
    key=len,
    reverse=True,
)
# Words that make a contact's "name" a function, not a person ("Duty officer", "Support pair -
# psychologist"): such names are not personal data and would flag ordinary text.
ROLE_WORDS = frozenset(
    """
    officer desk duty liaison coordinator director secretariat office unit helpline service
    head manager team point contact reception department centre center line hotline permanence
    accueil bureau sample staff administrator practitioner general national support pair
    educator psychologist psychiatrist social worker counsellor counselor mediator chaplain
    teacher trainer adviser advisor specialist analyst nurse doctor lawyer inspector probation
    prison police guard assistant secretary clerk representative delegate operator enquiries
    appointments referral relations commission council training policy international regional
    deputy interregional
""".split()
)
MIN_STEM = 4
# The Bulgarian definite article, suffixed to a name used as a noun or a possessive adjective
# (Петровия, Петровата, Петровите, Славейковския): also tried without it in Cyrillic text.
BULGARIAN_ARTICLES = ("ият", "ия", "ят", "я", "ът", "та", "то", "те")
CYRILLIC = re.compile("[\u0400-\u04ff]")
NAME = "a name of a person this node knows"
PHONE = "a phone number"
# Not phone numbers: year ranges (2015-2020) and legal references (Law 53/2008, P.D. 300/2003).
NOT_PHONE = re.compile(
    r"\d{4}\s*[-–/.]\s*\d{1,4}(?:\s*[-–/.]\s*\d{1,4})?|\d{1,5}\s*/\s*(?:19|20)\d{2}"
)


@dataclass(frozen=True)
class Hit:
    detector: str
    field: str
    start: int
    end: int

    @property
    def reason(self) -> str:
        return f"{self.detector} in {self.field} at characters {self.start}-{self.end}"


def _stem(word: str) -> str:
    for ending in ENDINGS:
        if word.endswith(ending) and len(word) - len(ending) >= MIN_STEM - 1:
            return word[: -len(ending)]
    return word


def transliterate(text: str) -> str:
    """Greek (ELOT 743, simplified) and Bulgarian (official system) to Latin letters."""
    out = fold(text)
    for greek, latin in GREEK_DIGRAPHS:
        out = out.replace(greek, latin)
    return "".join(GREEK_LATIN.get(c, BULGARIAN_LATIN.get(c, c)) for c in out)


def word_forms(word: str) -> frozenset[str]:
    """The forms a word is compared in: its own script and its Latin transliteration, each
    folded, stripped of an inflected ending, with look-alike letters made one."""
    folded = fold(word)
    return frozenset(_stem(form).translate(CONFUSABLES) for form in (folded, transliterate(folded)))


def text_forms(word: str) -> frozenset[str]:
    """The forms of a word of text: those of `word_forms`, and in Cyrillic also those of the
    word without a definite article (names themselves are stored without one)."""
    forms = word_forms(word)
    if not CYRILLIC.search(word):
        return forms
    folded = fold(word)
    for article in BULGARIAN_ARTICLES:
        if folded.endswith(article) and len(folded) - len(article) >= MIN_STEM:
            forms |= word_forms(folded[: -len(article)])
    return forms


@dataclass(frozen=True)
class KnownName:
    """A person this node knows: the forms of each word of the name, surname last."""

    words: tuple[frozenset[str], ...]

    @property
    def surname(self) -> frozenset[str]:
        return frozenset(f for f in self.words[-1] if len(f) >= MIN_STEM)


def known_names(names: Iterable[str]) -> list[KnownName]:
    """Person names; functional roles ("Duty officer", "Desk") are not people and are left out."""
    out: set[KnownName] = set()
    for name in names:
        words = [w for w in WORD.findall(re.sub(r"\([^)]*\)", " ", name)) if len(w) > 1]
        if not words or any(fold(w) in ROLE_WORDS for w in words):
            continue
        out.add(KnownName(tuple(word_forms(w) for w in words)))
    return sorted(out, key=lambda k: sorted(k.words[-1]))


def _name_hits(field: str, text: str, names: list[KnownName]) -> list[Hit]:
    if not names:
        return []
    tokens = [(m.start(), m.end(), text_forms(m.group())) for m in WORD.finditer(text)]
    hits = []
    for name in names:
        size = len(name.words)
        for i, (start, end, forms) in enumerate(tokens):
            window = tokens[i : i + size]
            full = (
                size > 1
                and len(window) == size
                and all(token[2] & word for token, word in zip(window, name.words, strict=True))
            )
            if full:
                hits.append(Hit(NAME, field, start, window[-1][1]))
            elif forms & name.surname:
                hits.append(Hit(NAME, field, start, end))
    return hits


# What every form EMAIL knows contains: the expensive pattern runs only where one of these is.
AT_SIGN = re.compile(r"[@＠]|[\[({]\s*at\s*[\])}]", re.IGNORECASE)
AT_WORD_DOT = re.compile(r"\sat\s.*?[\[(]\s*dot", re.IGNORECASE | re.DOTALL)


def _email_hits(field: str, text: str) -> list[Hit]:
    if not AT_SIGN.search(text) and not AT_WORD_DOT.search(text):
        return []
    return [Hit("an e-mail address", field, m.start(), m.end()) for m in EMAIL.finditer(text)]


@cache
def _id_modules() -> list[Any]:
    modules = []
    for name in NATIONAL_IDS:
        try:
            modules.append(importlib.import_module(f"stdnum.{name}"))
        except ImportError:
            continue
    return modules


# Where a phone number could be: a run of digits and separators holding at least 8 digits. The
# matcher (slow: it tries every EU numbering plan) only looks around such runs.
PHONE_RUN = re.compile(r"[+(]?\d[\d\s().\-/\u00a0]{5,40}\d")
PHONE_CONTEXT = 24  # characters of text either side of a run the matcher sees


def _phone_hits(field: str, text: str, home: str | None) -> list[Hit]:
    if sum(map(str.isdigit, text)) < 6:
        return []
    found: dict[tuple[int, int], Hit] = {}
    windows = [
        (max(0, m.start() - PHONE_CONTEXT), m.end() + PHONE_CONTEXT)
        for m in PHONE_RUN.finditer(text)
        if sum(map(str.isdigit, m.group())) >= 8 and not NOT_PHONE.fullmatch(m.group().strip())
    ]
    for low, high in _merged(windows):
        part = text[low:high]
        for region in dict.fromkeys([home, *EU_REGIONS]):
            if region is None:
                continue
            for match in phonenumbers.PhoneNumberMatcher(part, region, phonenumbers.Leniency.VALID):
                start, end = low + match.start, low + match.end
                raw = match.raw_string.strip(" ()[]")
                inside_word = text[start - 1 : start] in ("_", "/", ".") or text[end : end + 1] in (
                    "_",
                    "/",
                )
                digits = sum(map(str.isdigit, raw))
                if digits < 8 or inside_word or NOT_PHONE.fullmatch(raw):
                    continue
                found.setdefault((start, end), Hit(PHONE, field, start, end))
    return list(found.values())


def _merged(windows: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for low, high in windows:
        if out and low <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], high))
        else:
            out.append((low, high))
    return out


def _iban_hits(field: str, text: str) -> list[Hit]:
    return [
        Hit("a bank account number (IBAN)", field, m.start(), m.end())
        for m in IBAN_CANDIDATE.finditer(text)
        if iban.is_valid(m.group())
    ]


def _id_hits(field: str, text: str) -> list[Hit]:
    if sum(map(str.isdigit, text)) < 6:
        return []
    hits = []
    for match in ID_CANDIDATE.finditer(text):
        candidate = match.group()
        if sum(map(str.isdigit, candidate)) < 6 or _looks_like_dates(candidate):
            continue
        if any(_valid(module, candidate) for module in _id_modules()):
            hits.append(Hit("a national identity number", field, match.start(), match.end()))
    return hits


def _looks_like_dates(candidate: str) -> bool:
    return bool(re.fullmatch(r"\d{4}([-/. ]\d{1,4})*", candidate.strip()))


def _valid(module: Any, candidate: str) -> bool:
    try:
        return bool(module.is_valid(candidate))
    except Exception:
        return False


@dataclass(frozen=True)
class Gate:
    """The detectors, with what this node knows: its people and its country's numbering."""

    names: tuple[KnownName, ...] = ()
    home_region: str | None = None

    @classmethod
    def for_people(cls, names: Iterable[str], home_region: str | None = None) -> "Gate":
        return cls(tuple(known_names(names)), home_region)

    def scan(self, body: Any) -> list[Hit]:
        hits: list[Hit] = []
        names = list(self.names)
        for field, text in text_fields(body):
            hits += _email_hits(field, text)
            hits += _phone_hits(field, text, self.home_region)
            hits += _iban_hits(field, text)
            hits += _id_hits(field, text)
            hits += _name_hits(field, text, names)
        return _without_overlaps(hits)


def _without_overlaps(hits: list[Hit]) -> list[Hit]:
    """One hit per stretch of text: a number inside an IBAN is the IBAN, not also a phone."""
    ordered = sorted(set(hits), key=lambda h: (h.field, h.start, -(h.end - h.start), h.detector))
    kept: list[Hit] = []
    for hit in ordered:
        if kept and kept[-1].field == hit.field and hit.end <= kept[-1].end:
            continue
        kept.append(hit)
    return kept
