"""Details that point to one person although they are not a name or a number of a known kind:
dates of birth, street addresses, number plates, case and file numbers, IP addresses and
messaging handles. Each detector reads the normal form (normal.py: ASCII; keywords of all five
languages normalised alike) with patterns whose every repetition is bounded, so a scan's cost
is linear in the text."""

import ipaddress
import re
from collections.abc import Iterable
from itertools import islice

from federation.gate.clues import (
    Clues,
    Keyword,
    compiled,
    keyword_led,
    keyword_list,
    merged,
    present,
    trigger,
)
from federation.gate.findings import (
    CASE_NUMBER,
    DATE_OF_BIRTH,
    HANDLE,
    IP_ADDRESS,
    MAX_HITS,
    PLATE,
    STREET_ADDRESS,
    Found,
)
from federation.gate.normal import keywords

IGNORE = re.IGNORECASE

MONTHS = keywords(
    "jan feb mar apr may jun jul aug sep oct nov dec janv fevr avr mai juin juil aout sept "
    "janeiro fevereiro marco abril maio junho julho agosto setembro outubro novembro dezembro "
    "ιανουαρ φεβρουαρ μαρτ απριλ μαι μαΐ ιουν ιουλ αυγουστ σεπτεμβρ οκτωβρ νοεμβρ δεκεμβρ "
    "януари февруари март април май юни юли август септември октомври ноември декември"
)
YEAR = r"(?:19|20)\d{2}(?!\d)"
DATE = (
    r"(?:\d{1,2}\s?[./-]\s?\d{1,2}\s?[./-]\s?(?:(?:19|20)?\d{2})(?!\d)"
    rf"|{YEAR}-\d{{1,2}}-\d{{1,2}}"
    rf"|\d{{1,2}}(?:st|nd|rd|th|er|o)?\.?\s(?:de\s)?(?:{MONTHS})[a-z]{{0,8}}\.?,?\s(?:de\s)?{YEAR}"
    rf"|(?:{MONTHS})[a-z]{{0,8}}\.?\s\d{{1,2}}(?:st|nd|rd|th)?,?\s{YEAR})"
)
# Patterns that open on a keyword ("{K}") read the lower-cased text; each keyword carries its
# own check that no letter stands before it (clues.py).
BORN = keyword_list(
    "born née nee né_le né_à né_en nascido nascida nasceu γεννήθηκε γεννημένος γεννημένη "
    "роден родена родeн"
)
BIRTH_DATE = keyword_list(
    "date_of_birth birth_date birthdate dob d.o.b date_de_naissance data_de_nascimento "
    "data_nasc ημερομηνία_γέννησης ημ._γέννησης ημερ._γεννήσεως дата_на_раждане рождена_дата"
)
DOB = (
    (BORN, rf"{{K}}(?![a-z])[^\d\n\x00]{{0,30}}?{DATE}"),
    (BIRTH_DATE, rf"{{K}}(?![a-z])\s{{0,3}}[:,-]?\s{{0,3}}(?:{DATE}|{YEAR})"),
)

NUMBER_END = r"(?:\s?(?:bis|ter|[a-z]))?(?![\d/.,]\d)"
NUMBER = r"\d{1,4}" + NUMBER_END
STREET_AFTER = keyword_list(
    "rue avenue av. boulevard bd bvd place chemin allée impasse quai route cours "
    "rua avenida avda travessa largo praça praceta estrada alameda calçada"
)
STREET_BEFORE = keyword_list(
    "rue avenue boulevard chemin allée impasse quai "
    "rua avenida av. avda travessa largo praça praceta estrada alameda calçada "
    "οδός οδό οδ. λεωφόρος λεωφ. πλατεία "
    "улица ул. булевард бул. площад пл. "
    "street"
)
EN_STREET_WORDS = trigger(
    frozenset(
        "street st road rd avenue ave lane ln drive dr boulevard blvd way close court crescent "
        "square terrace place gardens row hill".split()
    )
)
EN_STREET = "|".join(w.capitalize() for w in sorted(EN_STREET_WORDS, key=len, reverse=True))
# A number, then the street's kind ("12 rue …"): the lookbehind stands after the first digit,
# so that the search skips to digits.
NUMBER_THEN_STREET = (
    r"\d(?<![\w/.,-]\d)\d{0,3}"
    + NUMBER_END
    + r",?\s(?:{K})\s(?:d[eu]s?\s|de\sla\s|da\s|do\s|l'|d')?"
    r"[a-z'\"<-]{2,}"
)
STREET_THEN_NUMBER = (
    r"{K}\s{1,3}(?:[^\s\d\x00]{1,30}\s{1,3}){0,5}?,?\s?(?:n[or]?\.?o?\s?)?" + NUMBER
)
EN_ADDRESS = re.compile(
    rf"\d(?<![\w/.,-]\d)\d{{0,3}}[A-Za-z]?,?\s(?:[A-Z][a-z'-]+\s){{1,3}}(?:{EN_STREET})\b"
)

NOT_YEAR = r"(?!(?:19|20)\d\d(?!\d))"
PLATES = re.compile(
    r"(?<![\w-])(?:"
    r"[A-Z]{2}[- ]\d{3}[- ][A-Z]{2}"  # FR, IT
    r"|\d{2}-[A-Z]{2}-\d{2}|[A-Z]{2}-\d{2}-[A-Z]{2}|[A-Z]{2}-\d{2}-\d{2}|\d{2}-\d{2}-[A-Z]{2}"  # PT
    rf"|(?:[A-Z]|Kh){{1,2}} ?{NOT_YEAR}\d{{4}} ?(?:[A-Z]|Kh){{2}}"  # BG
    rf"|[ABEHIKMNOPRTVXYZ]{{3}}(?:-|\s?{NOT_YEAR})\d{{4}}"  # GR
    rf"|{NOT_YEAR}\d{{4}}[- ]?[BCDFGHJKLMNPRSTVWXYZ]{{3}}"  # ES
    r"|\d{2}-[A-Z]{3}-\d|\d-[A-Z]{3}-\d{2}|[A-Z]{2}-\d{3}-[A-Z]|[A-Z]-\d{3}-[A-Z]{2}"  # NL
    r"|[A-Z]{3}-\d{2}-[A-Z]|\d-[A-Z]{2}-\d{3}"
    rf"|[A-Z]{{1,3}}-[A-Z]{{1,2}} {NOT_YEAR}\d{{1,4}}"  # DE
    r")(?![\w-])"
)
# Every plate has a capital letter beside its digits (a space or a dash between at most): only
# the runs of digits with one before or after them are read.
PLATE_REACH = 16  # characters a plate reaches either side of its clue

CASE_WORDS = keyword_list(
    "case_no case_nr case_number case_# case_ref file_no file_nr file_number docket_no "
    "docket_number dossier_n dossier_no affaire_n affaire_no n°_de_dossier numéro_de_dossier "
    "n°_d'affaire proc._n proc._no processo_n processo_no processo_nº nuipc "
    "дело_№ дело_no дело_номер преписка_№ н.о.х.д. нохд "
    "υπόθεση_αρ υπόθεσης_αρ αρ._υπόθεσης αριθμός_υπόθεσης αρ._φακέλου αριθμός_φακέλου"
)
CASE_NAMES = keyword_list("case affaire processo delo ypothesi")
CASES = (
    (CASE_WORDS, r"{K}[.o]{0,3}\s{0,3}[.:#]?\s{0,3}[a-z]{0,6}\d[\w./-]{0,30}"),
    (CASE_NAMES, r"{K}\s\d{1,6}/\d{2,4}(?!\d)"),
)

IPV4 = re.compile(r"\d(?<![\d.]\d)\d{0,2}\.(?:\d{1,3}\.){2}\d{1,3}(?![\d]|\.\d)")
IPV6_CLUE = re.compile(r":[0-9A-Fa-f]{0,4}:")
IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")

MESSENGERS = keyword_list("signal whatsapp viber telegram skype threema wickr wire")
AT_HANDLE = re.compile(r"@(?<![\w.@/+-]@)[A-Za-z0-9_]{2,30}(?:\.[A-Za-z0-9_]{1,30}){0,3}(?![\w@])")
LINK_HANDLE = re.compile(
    r"(?<![\w.])(?:t\.me|telegram\.me|wa\.me|signal\.me|signal\.group|viber\.me)/[#\w+/.-]{2,60}"
)
MESSENGER_HANDLE = (
    r"{K}\s{0,3}(?:id|handle|user(?:name)?|number|no\.?|nr\.?)?\s{0,3}"
    r"(?:[:=]?\s{0,3}(?:on\s|at\s)?\+?\d[\d ]{6,20}\d|[:=]\s{0,3}@?[\w.+-]{3,40})"
)


def _found(what: str, matches: Iterable[re.Match[str]]) -> list[Found]:
    return [(what, m.start(), m.end()) for m in islice(matches, MAX_HITS)]


def _keyed(
    what: str, families: Iterable[tuple[tuple[Keyword, ...], str]], clues: Clues
) -> list[Found]:
    hits: list[Found] = []
    for family, template in families:
        hits += _found(what, keyword_led(template, present(family, clues), clues.lower))
    return hits


def date_of_birth_hits(clues: Clues) -> list[Found]:
    return _keyed(DATE_OF_BIRTH, DOB, clues) if clues.digits else []


def address_hits(clues: Clues) -> list[Found]:
    if not clues.digits:
        return []
    hits = _keyed(STREET_ADDRESS, [(STREET_BEFORE, STREET_THEN_NUMBER)], clues)
    after = present(STREET_AFTER, clues)
    if after:
        pattern = compiled(NUMBER_THEN_STREET, after)
        hits += _found(STREET_ADDRESS, pattern.finditer(clues.lower))
    if clues.words & EN_STREET_WORDS:
        hits += _found(STREET_ADDRESS, EN_ADDRESS.finditer(clues.text))
    return hits


def plate_hits(clues: Clues) -> list[Found]:
    text = clues.text
    beside = [
        (start - PLATE_REACH, end + PLATE_REACH)
        for start, end in clues.runs
        if _capital_around(text, start, end)
    ]
    hits: list[Found] = []
    for low, high in merged(beside, len(text)):
        if len(hits) >= MAX_HITS:
            break
        for m in PLATES.finditer(text, low, high):
            # a window's end is no end of the text: the match is taken as the whole text reads
            whole = PLATES.match(text, m.start())
            if whole is not None and whole.end() == m.end():
                hits.append((PLATE, m.start(), m.end()))
    return hits


def _capital_around(text: str, start: int, end: int) -> bool:
    before = text[max(0, start - 3) : start]
    return any(c.isupper() for c in before) or text[end : end + 1].isupper()


def case_number_hits(clues: Clues) -> list[Found]:
    return _keyed(CASE_NUMBER, CASES, clues) if clues.digits else []


def ip_hits(clues: Clues) -> list[Found]:
    text = clues.text
    hits: list[Found] = []
    if any(text.count(".", start, end) >= 3 for start, end in clues.runs):
        for m in islice(IPV4.finditer(text), MAX_HITS):
            octets = m.group().split(".")
            # "4.1.2.1" numbers a section; an address has a two- or three-digit part somewhere
            if all(len(o) == 1 for o in octets) or any(o != "0" and o[0] == "0" for o in octets):
                continue
            if _is_ip(m.group()):
                hits.append((IP_ADDRESS, m.start(), m.end()))
    if IPV6_CLUE.search(text):
        for m in islice(IPV6.finditer(text), MAX_HITS):
            groups = [g for g in m.group().split(":") if g]
            plain_time = "::" not in m.group() and all(len(g) <= 2 for g in groups)
            if len(groups) >= 2 and not plain_time and _is_ip(m.group()):
                hits.append((IP_ADDRESS, m.start(), m.end()))
    return hits


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def handle_hits(clues: Clues) -> list[Found]:
    text, lower = clues.text, clues.lower
    hits: list[Found] = []
    if "@" in text:
        hits += _found(HANDLE, AT_HANDLE.finditer(text))
    if "me/" in lower or "group/" in lower:
        hits += _found(HANDLE, LINK_HANDLE.finditer(lower))
    return hits + _keyed(HANDLE, [(MESSENGERS, MESSENGER_HANDLE)], clues)


DETECTORS = (
    date_of_birth_hits,
    address_hits,
    plate_hits,
    case_number_hits,
    ip_hits,
    handle_hits,
)


# Numbers inside a link or a DOI are a path, not a person's ("…/uploads/9/7/7/2/97721820/…").
LINKS = re.compile(
    r"(?:https?://|www\.|\b[\w-]{1,63}\.(?:org|com|eu|int|gov|net|info|gr|bg|pt|fr|be|de)/)"
    r"[^\s<>\"\x00]{0,2000}|\b10\.\d{4,9}/[^\s<>\"\x00]{1,200}",
    IGNORE,
)


def links(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in LINKS.finditer(text)]
