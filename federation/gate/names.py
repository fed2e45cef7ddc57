"""The names of people this node knows, found in text whatever their case, accents, script or
inflected ending; functional roles ("Duty officer") are not people."""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from federation.gate.findings import NAME, Hit
from federation.gate.scripts import CONFUSABLES, transliterate
from node.core.text import fold

WORD = re.compile(r"[^\W\d_]+")

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


def _stem(word: str) -> str:
    for ending in ENDINGS:
        if word.endswith(ending) and len(word) - len(ending) >= MIN_STEM - 1:
            return word[: -len(ending)]
    return word


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
