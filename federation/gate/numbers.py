"""Numbers that identify a person: phone numbers of every EU numbering plan, IBANs, and the
national identity numbers python-stdnum validates. Each detector reads only the stretches of
text around runs of digits."""

import importlib
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import phonenumbers
from stdnum import iban

from federation.gate.findings import IBAN_NUMBER, NATIONAL_ID, PHONE, Found

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

IBAN_CANDIDATE = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b", re.IGNORECASE)

# Not phone numbers: year ranges (2015-2020), legal references (Law 53/2008, P.D. 300/2003)
# and dates (29.04.2014).
NOT_PHONE = re.compile(
    r"\d{4}\s*[-–/.]\s*\d{1,4}(?:\s*[-–/.]\s*\d{1,4})?|\d{1,5}\s*/\s*(?:19|20)\d{2}"
    r"|\d{1,2}[./-]\d{1,2}[./-](?:19|20)\d{2}"
)


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


def phone_hits(text: str, home: str | None, numbers: Numbers) -> list[Found]:
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


def iban_hits(text: str, numbers: Numbers) -> list[Found]:
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
            hits.append((IBAN_NUMBER, m.start(), m.start() + end))
    return hits


def id_hits(text: str, numbers: Numbers) -> list[Found]:
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
                    hits.append((NATIONAL_ID, start, end))
    return hits


def _valid(module: Any, candidate: str) -> bool:
    try:
        return bool(module.is_valid(candidate))
    except Exception:
        return False
