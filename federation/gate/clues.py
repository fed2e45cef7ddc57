"""What a text holds, found once per scan, so that each detector looks only where it could
find something: whether there are digits, the words of the text, and patterns that open on
one of their keywords (sre finds a pattern's leading literal fast, an alternation of a hundred
keywords slowly: a keyword-led pattern is compiled once per keyword present, each opening on
its own keyword's first word)."""

import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from itertools import islice

from federation.gate.findings import MAX_HITS
from federation.gate.normal import normal

# Every character that is not a letter or a digit, as a space: what splits a text into words.
NOT_WORD = str.maketrans({chr(c): " " for c in range(128) if not chr(c).isalnum()})
DIGIT = re.compile(r"\d")
# Every phone number, IBAN and identity number holds digits, and so do dates, addresses, plates
# and case numbers: those detectors read only the stretches of text around runs of digits.
DIGITS = re.compile(r"\d[\d\s./+()\-]*")


# The first words of every keyword a detector looks for: a text's words are kept only if they
# are one (cheaper than a set of all of them).
TRIGGERS: set[str] = set()


def trigger(words: frozenset[str]) -> frozenset[str]:
    """Words a detector looks for in `Clues.words`."""
    TRIGGERS.update(words)
    return words


@dataclass
class Clues:
    """A text in the normal form (ASCII), lower-cased, and what it holds."""

    text: str
    lower: str = field(init=False)
    digits: bool = field(init=False)
    _words: set[str] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.lower = self.text.lower()  # ASCII: the same length, the same positions
        self.digits = DIGIT.search(self.text) is not None

    @cached_property
    def runs(self) -> list[tuple[int, int]]:
        """The runs of digits (with the spaces and punctuation between and after them)."""
        return [m.span() for m in DIGITS.finditer(self.text)] if self.digits else []

    @property
    def words(self) -> set[str]:
        """The words of the text that some keyword opens on (see `trigger`)."""
        if self._words is None:
            self._words = TRIGGERS.intersection(self.lower.translate(NOT_WORD).split())
        return self._words


@dataclass(frozen=True)
class Keyword:
    """One keyword in the normal form: its first word, and the keyword as a pattern that
    opens on that word's letters (a literal) and then checks that no letter stands before."""

    first: str
    pattern: str

    @classmethod
    def of(cls, word: str) -> "Keyword":
        form = normal(word.replace("_", " ")).text.lower()
        first = form.translate(NOT_WORD).split()[0]
        at = form.index(first)
        head = re.escape(form[: at + len(first)])
        rest = re.escape(form[at + len(first) :]).replace("\\ ", r"\s+")
        return cls(first, rf"{head}(?<![a-z]{head}){rest}")


def keyword_list(words: str) -> tuple[Keyword, ...]:
    """Space-separated keywords ("_" stands for a space inside one), longest first."""
    found = {Keyword.of(w) for w in words.split()}
    trigger(frozenset(k.first for k in found))
    return tuple(sorted(found, key=lambda k: (-len(k.pattern), k.pattern)))


def present(keywords: tuple[Keyword, ...], clues: Clues) -> tuple[Keyword, ...]:
    """The keywords whose first word the text holds (most texts hold none of a family's)."""
    words = clues.words
    if not words:
        return ()
    by_first = _by_first(keywords)
    if words.isdisjoint(by_first):
        return ()
    if len(by_first) == 1:
        return keywords
    return tuple(k for k in keywords if k.first in words)


# A family's keywords by their first word, kept by the family's identity: a family is a
# module-level tuple, and hashing its keywords on every scan cost more than the look-up.
_FAMILIES: dict[int, tuple[tuple[Keyword, ...], frozenset[str]]] = {}


def _by_first(keywords: tuple[Keyword, ...]) -> frozenset[str]:
    known = _FAMILIES.get(id(keywords))
    if known is None or known[0] is not keywords:
        known = _FAMILIES[id(keywords)] = (keywords, frozenset(k.first for k in keywords))
    return known[1]


@lru_cache(maxsize=1024)
def compiled(template: str, keywords: tuple[Keyword, ...], flags: int = 0) -> re.Pattern[str]:
    """`template` with "{K}" standing for an alternation of these keywords."""
    alternation = "|".join(k.pattern for k in keywords)
    return re.compile(template.replace("{K}", f"(?:{alternation})"), flags)


def keyword_led(template: str, keywords: tuple[Keyword, ...], text: str) -> list[re.Match[str]]:
    """The matches of a pattern that opens on a keyword ("{K}" first in `template`): one pass
    per keyword, each led by its literal, so a text without the keyword costs one fast search."""
    out: list[re.Match[str]] = []
    for one in keywords:
        out += islice(compiled(template, (one,)).finditer(text), MAX_HITS)
    return out


def merged(windows: list[tuple[int, int]], size: int) -> list[tuple[int, int]]:
    """Overlapping windows (in order of their starts) as one, each kept within the text."""
    out: list[tuple[int, int]] = []
    for low, high in windows:
        low, high = max(0, low), min(size, high)
        if out and low <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], high))
        else:
            out.append((low, high))
    return out
