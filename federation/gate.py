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
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, cached_property, lru_cache
from itertools import accumulate
from typing import Any

import phonenumbers
from stdnum import iban

from federation.projection import text_fields, text_values
from node.core.text import fold

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
# Personal identity numbers of EU member states that python-stdnum validates (check digits),
# with the lengths they have in letters and digits (separators left out; a country prefix such
# as "HR" or "CY" counted). tests/federation/test_gate.py finds every example of stdnum's own
# documentation in running text, so a length missing here fails a test.
NATIONAL_IDS = {
    "bg.egn": (10,),
    "gr.amka": (11,),
    "fr.nir": (15,),
    "pt.cc": (12,),
    "es.dni": (9,),
    "es.nie": (9,),
    "it.codicefiscale": (11, 16),
    "nl.bsn": (8, 9),
    "be.nn": (11,),
    "dk.cpr": (10,),
    "se.personnummer": (10, 12),
    "fi.hetu": (10, 11),
    "ee.ik": (11,),
    "lt.asmens": (11,),
    "lv.pk": (11,),
    "pl.pesel": (11,),
    "ro.cnp": (13,),
    "cz.rc": (9, 10),
    "sk.rc": (9, 10),
    "si.emso": (13,),
    "hr.oib": (11, 13),
    "ie.pps": (8, 9),
    "de.idnr": (11,),
    "cy.vat": (9, 11),
}
ID_MIN, ID_MAX = 8, 16
# A stretch of text an identity number could be in: groups of letters and digits, each holding
# a digit, joined by one or two separators; a short group of letters (a country prefix, a
# check letter) may open or close it, not stand between two ("2008 e 2010", "8140-B/2019").
# Words of three letters or more end it: a number is never looked for across "le 29 avril 2014".
ID_GROUP_LETTERS = 8  # before its first digit (a codice fiscale has six)
# A codice fiscale's six letters written apart from the rest ("RSSMRA 85T10A562S", "RSS MRA …").
CF_LETTERS = r"[A-Z]{3} ?[A-Z]{3}[ ./-]"
ID_GROUP = rf"[A-Z]{{0,{ID_GROUP_LETTERS}}}\d[A-Z0-9]*+"
ID_RUN = re.compile(
    rf"(?<![\w-])(?:[A-Z]{{1,2}}(?:[ ./+-]{{1,2}}|(?=\d))|{CF_LETTERS})?{ID_GROUP}"
    rf"(?:[ ./+-]{{1,2}}{ID_GROUP})*"
    # a closing letter group, unless it opens the next number ("2014 CY-10259033P")
    rf"(?:[ ./+-]{{1,2}}[A-Z]{{1,2}}(?!\w)(?![ ./+-]{{1,2}}[A-Z]{{0,{ID_GROUP_LETTERS}}}\d))?",
    re.IGNORECASE,
)
ID_TOKEN = re.compile(r"[A-Z0-9]+", re.IGNORECASE)
# Not identity numbers: dates and year ranges (2015-2020, 2018. 20, 29.04.2014).
NOT_ID = re.compile(r"\d{4}(?:[-/. ]{1,2}\d{1,4})*|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}")
EMAIL = re.compile(
    r"[\w.+-]+\s*(?:@|＠|\[\s*at\s*\]|\(\s*at\s*\)|\{\s*at\s*\}|\s+at\s+(?=[\w-]+\s*(?:\[|\()\s*dot))"
    r"\s*[\w-]+(?:\s*(?:\.|\[\s*dot\s*\]|\(\s*dot\s*\)|\{\s*dot\s*\})\s*[\w-]+)+",
    re.IGNORECASE,
)
IBAN_CANDIDATE = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b", re.IGNORECASE)
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
# Not phone numbers: year ranges (2015-2020), legal references (Law 53/2008, P.D. 300/2003)
# and dates (29.04.2014).
NOT_PHONE = re.compile(
    r"\d{4}\s*[-–/.]\s*\d{1,4}(?:\s*[-–/.]\s*\d{1,4})?|\d{1,5}\s*/\s*(?:19|20)\d{2}"
    r"|\d{1,2}[./-]\d{1,2}[./-](?:19|20)\d{2}"
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


@lru_cache(maxsize=50_000)  # the words of a node's texts repeat: each is folded once
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


@dataclass(frozen=True)
class NameIndex:
    """The known names by the forms of their first word and of their surname, so a text's
    words are looked up instead of compared with every name."""

    names: tuple[KnownName, ...]
    by_first: dict[str, frozenset[int]]
    by_surname: dict[str, frozenset[int]]

    @classmethod
    def of(cls, names: tuple[KnownName, ...]) -> "NameIndex":
        first: dict[str, set[int]] = {}
        surname: dict[str, set[int]] = {}
        for n, name in enumerate(names):
            if len(name.words) > 1:
                for form in name.words[0]:
                    first.setdefault(form, set()).add(n)
            for form in name.surname:
                surname.setdefault(form, set()).add(n)
        return cls(
            names,
            {f: frozenset(s) for f, s in first.items()},
            {f: frozenset(s) for f, s in surname.items()},
        )

    def hits(self, field: str, text: str) -> list[Hit]:
        """A whole name where its words follow one another, else a surname on its own."""
        tokens = [(m.start(), m.end(), text_forms(m.group())) for m in WORD.finditer(text)]
        hits = []
        for i, (start, end, forms) in enumerate(tokens):
            whole: set[int] = set()
            for n in _lookup(self.by_first, forms):
                words = self.names[n].words
                window = tokens[i : i + len(words)]
                if len(window) == len(words) and all(
                    token[2] & word for token, word in zip(window, words, strict=True)
                ):
                    whole.add(n)
                    hits.append(Hit(NAME, field, start, window[-1][1]))
            if _lookup(self.by_surname, forms) - whole:
                hits.append(Hit(NAME, field, start, end))
        return hits


def _lookup(index: dict[str, frozenset[int]], forms: frozenset[str]) -> set[int]:
    found: set[int] = set()
    for form in forms:
        found |= index.get(form, frozenset())
    return found


# What every form EMAIL knows contains: the expensive pattern runs only where one of these is.
AT_BRACKETED = re.compile(r"[\[({]\s*[aA][tT]\s*[\])}]")
DOT_WORD = re.compile(r"[\[(]\s*[dD][oO][tT]")
AT_WORD_DOT = re.compile(r"\sat\s.*?[\[(]\s*dot", re.IGNORECASE | re.DOTALL)


def _at_bracket(text: str, brackets: str, pattern: re.Pattern[str]) -> bool:
    """Whether `pattern`, which opens with one of `brackets`, matches somewhere: tried only at
    those brackets, found by `str.find` (the regex engine's own search tries every character,
    ten times slower on a practice's texts)."""
    if sum(map(text.count, brackets)) > 64:  # a text full of brackets: one regex pass is faster
        return pattern.search(text) is not None
    for bracket in brackets:
        at = text.find(bracket)
        while at != -1:
            if pattern.match(text, at):
                return True
            at = text.find(bracket, at + 1)
    return False


# A detector's finding in one text: (what, start, end).
Found = tuple[str, int, int]


def _email_hits(text: str) -> list[Found]:
    if (
        "@" not in text
        and "＠" not in text
        and not _at_bracket(text, "[({", AT_BRACKETED)
        and not (_at_bracket(text, "[(", DOT_WORD) and AT_WORD_DOT.search(text))
    ):
        return []
    return [("an e-mail address", m.start(), m.end()) for m in EMAIL.finditer(text)]


@cache
def _id_modules() -> dict[int, list[Any]]:
    """The identity-number validators by the length of the numbers they accept (letters and
    digits only, separators left out), so each candidate meets only those of its length."""
    modules: dict[int, list[Any]] = {}
    for name, lengths in NATIONAL_IDS.items():
        try:
            module = importlib.import_module(f"stdnum.{name}")
        except ImportError:
            continue
        for length in lengths:
            modules.setdefault(length, []).append(module)
    return modules


# Where a phone number could be: a run of digits and separators holding at least 8 digits. The
# matcher (slow: it tries every EU numbering plan) only looks around such runs.
PHONE_RUN = re.compile(r"[+(]?\d[\d\s().\-/\u00a0]{5,40}\d")
PHONE_CONTEXT = 24  # characters of text either side of a run the matcher sees


# Every phone number, IBAN and identity number holds digits: those detectors read only the
# stretches of text around them, as far as each one's pattern can reach from its digits.
DIGITS = re.compile(r"\d[\d\s./+()\-]*")
Spans = list[tuple[int, int]]


@dataclass(frozen=True)
class Numbers:
    """The runs of digits (with spaces and punctuation between them) of a text, and how many
    digits each holds."""

    text: str
    runs: list[tuple[int, int, int]]

    @classmethod
    def of(cls, text: str) -> "Numbers | None":
        """None when the text holds fewer than six digits: no number of interest then."""
        runs = [
            (m.start(), m.end(), sum(map(str.isdigit, m.group()))) for m in DIGITS.finditer(text)
        ]
        return cls(text, runs) if sum(r[2] for r in runs) >= 6 else None

    def around(self, before: int, after: int, *, digits: int = 1, gap: int = 0) -> Spans:
        """Stretches around runs no more than `gap` characters apart that hold `digits` digits
        together, from `before` characters ahead of them to `after` characters past them."""
        groups: list[list[int]] = []
        for start, end, count in self.runs:
            if groups and start - groups[-1][1] <= gap:
                groups[-1][1:] = [end, groups[-1][2] + count]
            else:
                groups.append([start, end, count])
        size = len(self.text)
        return _merged(
            [
                (max(0, a - before), min(size, b + after))
                for a, b, count in groups
                if count >= digits
            ]
        )


def _phone_hits(text: str, home: str | None, numbers: Numbers) -> list[Found]:
    found: dict[tuple[int, int], Found] = {}
    windows = [
        (max(0, m.start() - PHONE_CONTEXT), m.end() + PHONE_CONTEXT)
        for low, high in numbers.around(2, 2, digits=8)
        for m in PHONE_RUN.finditer(text, low, high)
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
                found.setdefault((start, end), (PHONE, start, end))
    return list(found.values())


def _merged(windows: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for low, high in windows:
        if out and low <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], high))
        else:
            out.append((low, high))
    return out


def _iban_hits(text: str, numbers: Numbers) -> list[Found]:
    """An IBAN opens with two letters and then two digits: it is looked for only where a run
    of digits does."""
    hits: list[Found] = []
    for start, _, _ in numbers.runs:
        head = text[start - 2 : start + 2]
        if start < 2 or not (head[:2].isalpha() and head[2:].isdigit()):
            continue
        m = IBAN_CANDIDATE.match(text, start - 2, min(len(text), start + 72))
        if m is None:
            continue
        # The pattern runs on into a short word after the number ("GR16 0110 … 695 now"):
        # each end at a space is tried, longest first.
        candidate = m.group()
        ends = [len(candidate)] + [
            i for i in range(len(candidate) - 1, 14, -1) if candidate[i] == " "
        ]
        end = next((e for e in ends if iban.is_valid(candidate[:e])), None)
        if end is not None:
            hits.append(("a bank account number (IBAN)", m.start(), m.start() + end))
    return hits


def _id_hits(text: str, numbers: Numbers) -> list[Found]:
    """Identity numbers: every stretch of groups of an `ID_RUN` whose letters and digits number
    as many as some identifier has is tried against the validators of that length, so a number
    is found whatever short words or other numbers stand next to it."""
    hits: list[Found] = []
    modules = _id_modules()
    windows = numbers.around(ID_GROUP_LETTERS + 4, ID_MAX + 8, digits=6, gap=4)
    runs = (run for low, high in windows for run in ID_RUN.finditer(text, low, high))
    for run in runs:
        if run.end() - run.start() < ID_MIN:
            continue
        tokens = [(m.start(), m.end()) for m in ID_TOKEN.finditer(run.group())]
        base = run.start()
        for i in range(len(tokens)):
            size = 0
            for j in range(i, len(tokens)):
                size += tokens[j][1] - tokens[j][0]
                if size > ID_MAX:
                    break
                if size < ID_MIN:
                    continue
                start, end = base + tokens[i][0], base + tokens[j][1]
                if any(h[1] <= start and end <= h[2] for h in hits):
                    continue
                candidate = text[start:end]
                if sum(map(str.isdigit, candidate)) < 6 or NOT_ID.fullmatch(candidate):
                    continue
                if any(_valid(module, candidate) for module in modules.get(size, ())):
                    hits.append(("a national identity number", start, end))
    return hits


def _valid(module: Any, candidate: str) -> bool:
    try:
        return bool(module.is_valid(candidate))
    except Exception:
        return False


SEPARATOR = "\x00"  # between the texts of a body scanned as one: no detector matches across it


@dataclass(frozen=True)
class Gate:
    """The detectors, with what this node knows: its people and its country's numbering."""

    names: tuple[KnownName, ...] = ()
    home_region: str | None = None

    @classmethod
    def for_people(cls, names: Iterable[str], home_region: str | None = None) -> "Gate":
        return cls(tuple(known_names(names)), home_region)

    @cached_property
    def name_index(self) -> NameIndex:
        return NameIndex.of(self.names)

    def scan(self, body: Any) -> list[Hit]:
        """Every hit in the texts of a body. The number and address detectors read all the
        texts at once (joined by a character none of them matches), names each text alone."""
        hits: list[Hit] = []
        if self.names:
            people = self.name_index
            for field, text in text_fields(body):
                hits += people.hits(field, text)
        texts = text_values(body)
        joined = SEPARATOR.join(texts)
        found = _email_hits(joined)
        numbers = Numbers.of(joined)
        if numbers:
            found += _iban_hits(joined, numbers)
            found += _phone_hits(joined, self.home_region, numbers)
            found += _id_hits(joined, numbers)
        if found:
            fields = text_fields(body)  # the same texts in the same order, with their paths
            starts = list(accumulate((len(text) + 1 for text in texts[:-1]), initial=0))
            for detector, start, end in found:
                index = bisect_right(starts, start) - 1
                field, text = fields[index]
                offset = starts[index]
                hits.append(Hit(detector, field, start - offset, min(end - offset, len(text))))
        return _without_overlaps(hits)


# Which reason a stretch found by two detectors is given: the more specific one (a phone
# number's digits often pass some identity number's check digits too, not the other way round).
SPECIFIC = {
    "an e-mail address": 0,
    "a bank account number (IBAN)": 1,
    PHONE: 2,
    NAME: 3,
    "a national identity number": 4,
}


def _without_overlaps(hits: list[Hit]) -> list[Hit]:
    """One hit per stretch of text: a number inside an IBAN is the IBAN, not also a phone."""
    ordered = sorted(
        set(hits),
        key=lambda h: (h.field, h.start, -(h.end - h.start), SPECIFIC.get(h.detector, 9)),
    )
    kept: list[Hit] = []
    for hit in ordered:
        if kept and kept[-1].field == hit.field and hit.end <= kept[-1].end:
            continue
        kept.append(hit)
    return kept
