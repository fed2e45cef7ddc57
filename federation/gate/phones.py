"""Phone numbers of every EU numbering plan (and any number written in international format),
found in linear time.

libphonenumber's matcher tries a whole run of digits and then pieces of it, for each region,
at a cost that grows faster than the run ("12 12 12 …" took minutes per MB). Here each run of
digit groups is read once: a candidate is a stretch of whole groups holding 8 to 17 digits
(so at most a few per group), first checked against one pattern made of every region's number
types (libphonenumber's own metadata: a number no type of any region has is no number), and
only then parsed and validated by libphonenumber as its matcher would (Leniency.VALID). The
longest valid stretch from a group is the number, and the next candidate starts after it.
"""

import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import phonenumbers
from phonenumbers import PhoneMetadata, phonenumbermatcher

from federation.gate.findings import MAX_HITS, PHONE, Budget, Found

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
MIN_DIGITS, MAX_DIGITS = 8, 17  # a national number with its trunk prefix, or "00" and E.164
RUN_HITS = 8  # numbers reported in one run of digit groups (a wall of them is held all the same)
# Groups of digits with one to three separators between them: digits and separators are
# disjoint, so the pattern never backtracks more than three characters.
RUN = re.compile(r"\d+(?:[\s().\-/+]{1,3}\d+)*")
GROUP = re.compile(r"\d+")

# Number types whose patterns say what a region's numbers are.
TYPES = (
    "fixed_line",
    "mobile",
    "toll_free",
    "premium_rate",
    "shared_cost",
    "personal_number",
    "voip",
    "pager",
    "uan",
    "voicemail",
)


def _types(metadata: Any) -> str:
    patterns = [
        desc.national_number_pattern
        for desc in (getattr(metadata, t, None) for t in TYPES)
        if desc is not None and desc.national_number_pattern
    ]
    return "|".join(f"(?:{p})" for p in patterns) or "(?!)"


def _region_form(region: str) -> str:
    """A region's numbers as written at home: its trunk prefix (optional), then a number of
    one of its types."""
    metadata = PhoneMetadata.metadata_for_region(region)
    assert metadata is not None
    prefix = metadata.national_prefix_for_parsing or metadata.national_prefix
    head = f"(?:{prefix})?" if prefix and not metadata.national_prefix_transform_rule else ""
    return f"{head}(?:{_types(metadata)})"


@cache
def _national(region: str) -> re.Pattern[str]:
    return re.compile(_region_form(region))


@cache
def _any_national() -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{_region_form(r)})" for r in EU_REGIONS))


@cache
def _country(code: int) -> re.Pattern[str] | None:
    """The numbers of a country calling code, after it (the trunk prefix may stand in
    brackets: "+33 (0)1 …")."""
    forms = []
    for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(code, ()):
        metadata = PhoneMetadata.metadata_for_region_or_calling_code(code, region)
        if metadata is not None:
            prefix = metadata.national_prefix_for_parsing or metadata.national_prefix
            head = f"(?:{prefix})?" if prefix else ""
            forms.append(f"{head}(?:{_types(metadata)})")
    return re.compile("|".join(f"(?:{f})" for f in forms)) if forms else None


def _plausible_international(digits: str) -> bool:
    for size in (1, 2, 3):
        pattern = _country(int(digits[:size])) if len(digits) > size else None
        if pattern is not None and pattern.fullmatch(digits[size:]):
            return True
    return False


# libphonenumber's matcher's own checks on a candidate (Leniency.VALID).
MATCHING_BRACKETS: re.Pattern[str] = phonenumbermatcher._MATCHING_BRACKETS
PUB_PAGES: re.Pattern[str] = phonenumbermatcher._PUB_PAGES
SLASH_DATES: re.Pattern[str] = phonenumbermatcher._SLASH_SEPARATED_DATES
LATIN_LETTER = re.compile(r"[A-Za-z]")

# Not phone numbers: year ranges (2015-2020), legal references (Law 53/2008, P.D. 300/2003)
# and dates (29.04.2014).
NOT_PHONE = re.compile(
    r"\d{4}\s*[-–/.]\s*\d{1,4}(?:\s*[-–/.]\s*\d{1,4})?|\d{1,5}\s*/\s*(?:19|20)\d{2}"
    r"|\d{1,2}[./-]\d{1,2}[./-](?:19|20)\d{2}"
)
# Numbers that reach a service, not a person: toll-free, shared-cost, premium-rate and universal
# access numbers (helplines, switchboards of national services), by their numbering plan; and
# public lines listed here by hand (E.164).
PUBLIC_TYPES = frozenset(
    {
        phonenumbers.PhoneNumberType.TOLL_FREE,
        phonenumbers.PhoneNumberType.SHARED_COST,
        phonenumbers.PhoneNumberType.PREMIUM_RATE,
        phonenumbers.PhoneNumberType.UAN,
    }
)
PUBLIC_NUMBERS = frozenset(
    {
        "+33800858858",  # France: Stop Djihadisme (numéro vert)
        "+302131502000",  # Greece: Ministry of Citizen Protection switchboard
    }
)
# Toll-free and shared-cost prefixes of the EU's plans ("0 800 …", "+33 800 …", "808 …").
SERVICE_PREFIX = re.compile(r"(?:\+\d{2,3}[\s.-]?)?(?:0[\s.-]?)?8(?:0[0-9]|1[01])\b")


def _public(raw: str, number: Any) -> bool:
    if SERVICE_PREFIX.match(raw.strip(" ()[]")):
        return True
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return e164 in PUBLIC_NUMBERS or phonenumbers.number_type(number) in PUBLIC_TYPES


def _valid(raw: str, region: str | None) -> Any:
    """The number libphonenumber's matcher would accept at Leniency.VALID, or None."""
    try:
        number = phonenumbers.parse(raw, region, keep_raw_input=True)
    except phonenumbers.NumberParseException:
        return None
    verified = phonenumbermatcher._verify(phonenumbers.Leniency.VALID, number, raw, None)  # type: ignore[arg-type]
    return number if verified else None


@dataclass
class _Reader:
    """Candidates of one scan, each judged once (a text repeating a number pays once)."""

    text: str
    home: str | None
    budget: Budget | None = None
    judged: dict[tuple[str, bool], Any] = field(default_factory=dict)
    nothing: set[str] = field(default_factory=set)  # stretches of text holding no number
    public: dict[str, bool] = field(default_factory=dict)

    def number(self, raw: str, digits: str, international: bool) -> Any:
        key = (digits, international)
        if key not in self.judged:
            self.judged[key] = self._judge(raw, digits, international)
        return self.judged[key]

    def _judge(self, raw: str, digits: str, international: bool) -> Any:
        if international:
            plain = digits[2:] if digits.startswith("00") else digits
            if not _plausible_international(plain):
                return None
            return self._valid(raw, self.home or "DE")  # every EU plan dials out with "00"
        if not _any_national().fullmatch(digits):
            return None
        for region in dict.fromkeys([self.home, *EU_REGIONS]):
            if region is not None and _national(region).fullmatch(digits):
                number = self._valid(raw, region)
                if number is not None:
                    return number
        return None

    def _valid(self, raw: str, region: str) -> Any:
        if self.budget is not None:
            self.budget.validate()
        return _valid(raw, region)

    def personal(self, low: int, high: int, number: Any, announced: Any) -> bool:
        text = self.text
        raw = text[low:high].strip(" ()[]")
        inside_word = text[low - 1 : low] in ("_", "/", ".") or text[high : high + 1] in ("_", "/")
        if inside_word or NOT_PHONE.fullmatch(raw):
            return False
        if raw not in self.public:
            self.public[raw] = _public(raw, number)
        return not self.public[raw] and not (announced is not None and announced(text, low))


def phone_hits(
    text: str,
    home: str | None,
    windows: list[tuple[int, int]],
    budget: Budget | None = None,
    announced: Any = None,
) -> list[Found]:
    """Phone numbers in the stretches of `text` that hold runs of at least 8 digits."""
    reader = _Reader(text, home, budget)
    hits: list[Found] = []
    for low, high in windows:
        for run in RUN.finditer(text, low, high):
            if len(hits) >= MAX_HITS:
                return hits
            if budget is not None:
                budget.check()
            groups = [(m.start(), m.end()) for m in GROUP.finditer(text, run.start(), run.end())]
            if sum(end - start for start, end in groups) >= MIN_DIGITS:
                hits += _in_run(reader, groups, announced)
    return hits


def _in_run(reader: _Reader, groups: list[tuple[int, int]], announced: Any) -> list[Found]:
    """The numbers in one run of groups. A number starts where the run does or after a break
    (a separator holding a space, a slash, a bracket or a "+"), and ends where the run does or
    before one: "2016-09-13-141058-860" and "ISBN 978-92-76-12345-7" hold no number inside."""
    text = reader.text
    breaks = [i == 0 or _breaks(text[groups[i - 1][1] : groups[i][0]]) for i in range(len(groups))]
    breaks.append(True)
    hits: list[Found] = []
    i = 0
    while i < len(groups) and len(hits) < RUN_HITS:
        if not breaks[i]:
            i += 1
            continue
        ends = []  # (group, digits) of each stretch from group i that may hold a number
        digits = ""
        for j in range(i, len(groups)):
            digits += text[groups[j][0] : groups[j][1]]
            if len(digits) > MAX_DIGITS:
                break
            if len(digits) >= MIN_DIGITS and breaks[j + 1]:
                ends.append((j, digits))
        low = _lead(text, groups[i][0])
        # what follows a group decides whether any stretch from it is a number: once per scan
        reach = text[low : groups[ends[-1][0]][1]] if ends else ""
        if not ends or reach in reader.nothing:
            i += 1
            continue
        plus = text[low : low + 2] in ("+", "(+") or text[low] == "+"
        judged = reader.judged
        taken = None
        numbers = 0
        for j, digits in reversed(ends):  # the longest number first
            high = groups[j][1]
            key = (digits, plus or digits.startswith("00"))
            if key not in judged and NOT_PHONE.fullmatch(text[low:high].strip(" ()[]")):
                continue  # a date or a range of years, whatever plan it would fit
            number = judged[key] if key in judged else reader.number(text[low:high], *key)
            numbers += number is not None
            if number is not None and _looks_like_one(text, low, high):
                taken = j
                if reader.personal(low, high, number, announced):
                    hits.append((PHONE, low, high))
                break
        if not numbers:
            reader.nothing.add(reach)
        i = taken + 1 if taken is not None else i + 1
    return hits


def _breaks(separator: str) -> bool:
    """Whether a separator holds more than dots and dashes (a space, a slash, a bracket)."""
    return separator.strip(".-") != ""


def _lead(text: str, start: int) -> int:
    """Where a number opening on the digit at `start` is written to open: "+", "(+", "(0"."""
    if text[start - 1 : start] == "+":
        start -= 1
    if text[start - 1 : start] == "(":
        start -= 1
    return start


def _looks_like_one(text: str, low: int, high: int) -> bool:
    """libphonenumber's matcher's checks on a candidate's writing and surroundings."""
    raw = text[low:high]
    if not MATCHING_BRACKETS.fullmatch(raw) or PUB_PAGES.search(raw) or SLASH_DATES.search(raw):
        return False
    before, after = text[low - 1 : low], text[high : high + 1]
    if before and raw[0] not in "+(" and (LATIN_LETTER.match(before) or before in "%$€£"):
        return False
    return not (after and (LATIN_LETTER.match(after) or after in "%$€£"))
