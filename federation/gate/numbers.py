"""Numbers that identify a person: IBANs and the national identity numbers python-stdnum
validates (phone numbers: phones.py). Each detector reads only the stretches of
text around runs of digits."""

import importlib
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from stdnum import iban

from federation.gate.clues import merged
from federation.gate.findings import IBAN_NUMBER, MAX_HITS, NATIONAL_ID, Budget, Found

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
RUN_HITS = 8  # numbers reported in one run of digit groups (a wall of them is held all the same)
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

# Groups may be split by spaces, dots, dashes or slashes ("GR16-0110-1250…", "PT50.0002…").
IBAN_CANDIDATE = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ./-]?[A-Z0-9]){11,30}\b", re.IGNORECASE)
IBAN_SEPARATORS = re.compile(r"[ ./-]")


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


Spans = list[tuple[int, int]]


@dataclass(frozen=True)
class Numbers:
    """The runs of digits (with spaces and punctuation between them) of a text, and how many
    digits each holds."""

    text: str
    runs: list[tuple[int, int, int]]

    @classmethod
    def of(cls, text: str, spans: list[tuple[int, int]]) -> "Numbers | None":
        """None when the text holds fewer than six digits: no number of interest then."""
        runs = [(start, end, sum(map(str.isdigit, text[start:end]))) for start, end in spans]
        return cls(text, runs) if sum(r[2] for r in runs) >= 6 else None

    def around(self, before: int, after: int, *, digits: int = 1, gap: int = 0) -> Spans:
        """Stretches around runs no more than `gap` characters apart that hold `digits` digits
        together, from `before` characters ahead of them to `after` characters past them.
        (A group is three integers, not a list: a text of a megabyte holds a hundred thousand
        runs, and as many small lists made the garbage collector's passes grow with the text.)"""
        spans: Spans = []
        low = high = total = -1
        for start, end, count in self.runs:
            if low >= 0 and start - high <= gap:
                high, total = end, total + count
                continue
            if low >= 0 and total >= digits:
                spans.append((low - before, high + after))
            low, high, total = start, end, count
        if low >= 0 and total >= digits:
            spans.append((low - before, high + after))
        return merged(spans, len(self.text))


# Numbers of books, articles, grants and projects, announced as such just before them.
NOT_PERSONAL_BEFORE = re.compile(
    r"(?:isbn(?:-1[03])?|issn|doi|grant(?:\s+agreement)?|agreement|project|contract|convention"
    r"|subvention|convenio|projeto|projet|ref(?:erence)?\.?)(?:\s+(?:no|nr|number|n|id))?"
    r"\.?\s{0,3}[:#]?\s{0,3}$",
    re.IGNORECASE,
)
# An Erasmus+ project number (2019-1-EL01-KA204-062895) holds what looks like a phone number.
PROJECT_NUMBER = re.compile(r"(?:19|20)\d{2}-\d-[A-Z]{2}\d{2}-KA\d{3}-\d{6}")


# A word each announcement holds: the patterns are only run where one is.
ANNOUNCING = (
    "isbn",
    "issn",
    "doi",
    "grant",
    "agreement",
    "proje",
    "contract",
    "conv",
    "subv",
    "ref",
)


def announced_as_not_personal(text: str, start: int) -> bool:
    """Whether the number at `start` is announced as an ISBN, a DOI, a grant or a project."""
    before = text[max(0, start - 40) : start]
    lower = before.lower()
    if any(word in lower for word in ANNOUNCING) and NOT_PERSONAL_BEFORE.search(before):
        return True
    around = text[max(0, start - 30) : start + 30]
    return "KA" in around and PROJECT_NUMBER.search(around) is not None


@cache
def _iban_length(country: str) -> int | None:
    """How many letters and digits a country's IBANs have (python-stdnum's registry)."""
    info = iban._ibandb.info(country)
    structure = info[0][1].get("bban", "") if info and info[0][1] else ""
    sizes = [int(size) for size, _ in iban._struct_re.findall(structure)]
    return 4 + sum(sizes) if sizes else None


def iban_hits(text: str, numbers: Numbers) -> list[Found]:
    """An IBAN opens with two letters and then two digits: it is looked for only where a run
    of digits does."""
    hits: list[Found] = []
    for start, _, _ in numbers.runs:
        head = text[start - 2 : start + 2]
        if start < 2 or not (head[:2].isalpha() and head[2:].isdigit()):
            continue
        length = _iban_length(head[:2].upper())
        m = IBAN_CANDIDATE.match(text, start - 2, min(len(text), start + 72)) if length else None
        if m is None:
            continue
        # The pattern runs on into a short word after the number ("GR16 0110 … 695 now"):
        # only the ends that give the length of the country's IBANs are tried, longest first.
        candidate = m.group()
        ends = [len(candidate)] + [
            i for i in range(len(candidate) - 1, 14, -1) if candidate[i] in " ./-"
        ]
        ends = [e for e in ends if e - len(IBAN_SEPARATORS.findall(candidate, 0, e)) == length]
        end = next((e for e in ends if iban.is_valid(IBAN_SEPARATORS.sub("", candidate[:e]))), None)
        if end is not None:
            hits.append((IBAN_NUMBER, m.start(), m.start() + end))
    return hits


def id_hits(text: str, numbers: Numbers, budget: Budget | None = None) -> list[Found]:
    """Identity numbers: every stretch of groups of an `ID_RUN` whose letters and digits number
    as many as some identifier has is tried against the validators of that length, so a number
    is found whatever short words or other numbers stand next to it. A stretch starts where the
    run does or after a space (or a slash, or a "+"), and ends where the run does or before one:
    "85.07.30-033.28" is one number, not the pieces of one. Each stretch is judged once per scan
    (a text repeating one costs one check)."""
    hits: list[Found] = []
    covered = -1  # the end of the hits so far: a stretch within one is not tried again
    judged: dict[str, bool] = {}  # whether a token and what follows it hold a number
    valid: dict[str, bool] = {}

    def identity(candidate: str, size: int) -> bool:
        if candidate not in valid:
            if budget is not None:
                budget.validate(len(_id_modules().get(size, ())))
            valid[candidate] = _identity(candidate, size)
        return valid[candidate]

    windows = numbers.around(ID_GROUP_LETTERS + 4, ID_MAX + 8, digits=6, gap=4)
    runs = (run for low, high in windows for run in ID_RUN.finditer(text, low, high))
    for run in runs:
        if len(hits) >= MAX_HITS:
            break
        if run.end() - run.start() < ID_MIN:
            continue
        tokens = [(m.start(), m.end()) for m in ID_TOKEN.finditer(text, run.start(), run.end())]
        breaks = [True] + [
            text[tokens[k - 1][1] : tokens[k][0]].strip(".-") != "" for k in range(1, len(tokens))
        ]
        breaks.append(True)
        found = 0  # a run holding more numbers than RUN_HITS is held for the first ones
        for i in range(len(tokens)):
            if found >= RUN_HITS:
                break
            if not breaks[i]:
                continue
            if budget is not None and i % 64 == 0:
                budget.check()
            stretches = []  # (size, end) of each stretch from token i that may be a number
            size = 0
            for j in range(i, len(tokens)):
                size += tokens[j][1] - tokens[j][0]
                if size > ID_MAX:
                    break
                if size >= ID_MIN and breaks[j + 1]:
                    stretches.append((size, tokens[j][1]))
            if not stretches or stretches[-1][1] <= covered:
                continue
            start = tokens[i][0]
            # what follows a token decides what its stretches are: judged once per scan
            reach = text[start : stretches[-1][1]]
            if reach not in judged:
                judged[reach] = any(identity(text[start:end], n) for n, end in stretches)
            if not judged[reach]:
                continue
            for size, end in stretches:
                if end > covered and identity(text[start:end], size):
                    if not announced_as_not_personal(text, start):
                        hits.append((NATIONAL_ID, start, end))
                        covered = max(covered, end)
                        found += 1
    return hits


def _identity(candidate: str, size: int) -> bool:
    if sum(map(str.isdigit, candidate)) < 6 or NOT_ID.fullmatch(candidate):
        return False
    return any(_valid(module, candidate) for module in _id_modules().get(size, ()))


def _valid(module: Any, candidate: str) -> bool:
    try:
        return bool(module.is_valid(candidate))
    except Exception:
        return False
