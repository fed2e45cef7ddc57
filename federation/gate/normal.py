"""One normal form of a text, which every detector reads, and the way back to the text as written.

Each character is taken alone: NFKC (fullwidth digits and letters, ligatures, no-break spaces),
format characters dropped (zero-width spaces and joiners, soft hyphens, bidi controls), a letter
that looks like a Latin letter replaced by it (Unicode's confusables data, as shipped by
`confusable-homoglyphs`), and whatever is left transliterated to ASCII (`anyascii`). The normal
form is therefore ASCII: a detector is written once, for ASCII, and a keyword of any language is
put through the same normalisation before it is looked for (`keyword`).

A character maps to zero or more characters, so a position in the normal form has one position
in the text as written: a hit still reports the words as they were written.
"""

import json
import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from itertools import accumulate, chain

from anyascii import anyascii

# Invisible characters that are not of category Cf: a combining grapheme joiner, variation
# selectors, Hangul fillers, the Braille blank.
INVISIBLE = frozenset("\u034f\u115f\u1160\u3164\uffa0\u2800") | frozenset(
    map(chr, range(0xFE00, 0xFE10))
)


@cache
def skeleton() -> dict[str, str]:
    """Each non-ASCII letter that Unicode's confusables data says looks like an ASCII letter,
    with that letter (a Cyrillic or a Greek "o" is "o")."""
    data = json.loads(
        resources.files("confusable_homoglyphs").joinpath("confusables.json").read_text("utf-8")
    )
    out: dict[str, str] = {}
    for char, homoglyphs in data.items():
        if len(char) != 1 or char.isascii() or not char.isalpha():
            continue
        latin = [h["c"] for h in homoglyphs if len(h["c"]) == 1 and h["c"].isascii()]
        letters = [c for c in latin if c.isalpha()]
        if letters:
            out[char] = letters[0]
    return out


# Where transliteration would say too much: "n°" is "no" (number), not "ndeg".
OVERRIDES = {"°": "o"}


def _one(char: str, *, look_alike: bool) -> str:
    if char in OVERRIDES:
        return OVERRIDES[char]
    if char in INVISIBLE or unicodedata.category(char) == "Cf":
        return ""
    out = []
    for c in unicodedata.normalize("NFKC", char):
        if c.isascii():
            out.append(c)
        elif c in INVISIBLE or unicodedata.category(c) == "Cf":
            continue
        elif look_alike and (latin := skeleton().get(c.lower())):
            out.append(latin.upper() if c.isupper() else latin)
        else:
            out.append(anyascii(c))
    return "".join(out)


class _Table(dict[int, str]):
    """`str.translate`'s table, filled as characters are first met."""

    def __init__(self, *, look_alike: bool) -> None:
        super().__init__()
        self.look_alike = look_alike

    def __missing__(self, code: int) -> str:
        self[code] = out = _one(chr(code), look_alike=self.look_alike)
        return out


# Transliteration; and for a word that mixes Latin letters with others (a Latin name with a
# Cyrillic "a", "o" or "p" in it), the confusables skeleton first: a Greek or Cyrillic word standing
# alone is transliterated as itself ("Петров" is Petrov, not "Petpov").
TRANSLITERATE = _Table(look_alike=False)
LOOK_ALIKE = _Table(look_alike=True)
# Where a Latin letter touches another character that is not ASCII: inside a mixed word.
TOUCHING = (re.compile(r"[A-Za-z][^\x00-\x7f]"), re.compile(r"[^\x00-\x7f][A-Za-z]"))
LETTER_AFTER_MARK = re.compile("\x01[A-Za-z]")
NON_ASCII = re.compile(r"([^\x00-\x7f]+)")
Segments = tuple[tuple[int, int, _Table], ...]


@dataclass(frozen=True)
class Normal:
    """A text as written and its normal form."""

    written: str
    text: str
    segments: Segments = ()  # stretches of `written` and the table each was translated with
    _starts: list[int] = field(default_factory=list, compare=False, repr=False)

    def _offsets(self) -> list[int]:
        if not self._starts:  # where each written character's output starts in the normal form
            lengths = chain.from_iterable(
                map(len, map(table.__getitem__, map(ord, self.written[start:end])))
                for start, end, table in self.segments
            )
            self._starts.extend(accumulate(lengths, initial=0))
        return self._starts

    def written_span(self, start: int, end: int) -> tuple[int, int]:
        """The stretch of the written text that gave `text[start:end]`."""
        if not self.segments:
            return start, end
        starts = self._offsets()
        first = bisect_right(starts, start) - 1
        last = bisect_right(starts, max(start, end - 1)) - 1
        return max(0, first), min(len(self.written), last + 1)

    def written_at(self, start: int, end: int) -> str:
        low, high = self.written_span(start, end)
        return self.written[low:high]


@cache
def _look_alike_differs() -> re.Pattern[str]:
    """The characters of the Basic Multilingual Plane that a look-alike reading changes (a
    Cyrillic "er" is read "p", not "r"): a few hundred; every other one reads the same
    either way."""
    letters = set(skeleton())
    candidates = (
        chr(code)
        for code in range(0x80, 0x10000)
        if chr(code).lower() in letters or not unicodedata.is_normalized("NFKC", chr(code))
    )
    differ = sorted(c for c in candidates if LOOK_ALIKE[ord(c)] != TRANSLITERATE[ord(c)])
    return re.compile("[" + "".join(map(re.escape, differ)) + "]")


def _astral(text: str) -> bool:
    """Whether a character of the text lies beyond the Basic Multilingual Plane (one that
    UTF-16 writes as two units)."""
    return len(text.encode("utf-16-le", "surrogatepass")) != 2 * len(text)


# Stretches of text that are not ASCII, as transliterated: the words of a language repeat, and
# a dictionary look-up costs a fraction of a translation. Emptied when full.
TRANSLATED: dict[str, str] = {}
TRANSLATED_MAX = 100_000


def _transliterated(stretch: str) -> str:
    out = TRANSLATED.get(stretch)
    if out is None:
        if len(TRANSLATED) >= TRANSLATED_MAX:
            TRANSLATED.clear()
        out = TRANSLATED[stretch] = stretch.translate(TRANSLITERATE)
    return out


def _mixed(text: str, ascii_parts: list[str]) -> bool:
    """Whether a word of the text may mix Latin letters with letters that read differently
    as look-alikes (then the exact, slower way is taken)."""
    if _astral(text):
        return True
    if not _look_alike_differs().search(text):
        return False
    # a Latin letter right after or right before a stretch that is not ASCII (marked "\x01")
    marked = "\x01".join(ascii_parts)
    return bool(LETTER_AFTER_MARK.search(marked) or LETTER_AFTER_MARK.search(marked[::-1]))


def normal(text: str) -> Normal:
    """The normal form of `text` (ASCII text is its own: nothing to do for it)."""
    if text.isascii():
        return Normal(text, text)
    parts = NON_ASCII.split(text)  # ASCII stretches, and between them the others
    if not _mixed(text, parts[0::2]):
        # no Latin letter touches a character that reads differently as a look-alike: one
        # table for the whole text, and ASCII stretches stand for themselves
        parts[1::2] = map(_transliterated, parts[1::2])
        return Normal(text, "".join(parts), ((0, len(text), TRANSLITERATE),))
    segments: list[tuple[int, int, _Table]] = []
    at = 0
    touching = sorted(m.start() for pattern in TOUCHING for m in pattern.finditer(text))
    for pair in touching:
        if pair < at:
            continue
        low, high = _word_around(text, pair, pair + 2)
        if low > at:
            segments.append((at, low, TRANSLITERATE))
        segments.append((low, high, LOOK_ALIKE))
        at = high
    if at < len(text):
        segments.append((at, len(text), TRANSLITERATE))
    out = "".join(text[start:end].translate(table) for start, end, table in segments)
    return Normal(text, out, tuple(segments))


def _word_around(text: str, start: int, end: int) -> tuple[int, int]:
    """The word (letters, digits and invisible characters) holding text[start:end]."""
    low = start
    while low > 0 and (text[low - 1].isalnum() or TRANSLITERATE[ord(text[low - 1])] == ""):
        low -= 1
    high = end
    while high < len(text) and (text[high].isalnum() or TRANSLITERATE[ord(text[high])] == ""):
        high += 1
    return low, high


def look_alike_form(word: str) -> str:
    """A word with every letter that looks like a Latin one made that letter (an all-Cyrillic
    "Papa" is read as the Latin word), lower-case."""
    return word.translate(LOOK_ALIKE).lower()


def keyword(word: str) -> str:
    """A keyword as it reads in the normal form, escaped for a regular expression."""
    return re.escape(normal(word).text.lower()).replace("\\ ", r"\s+")


def keywords(words: str) -> str:
    """An alternation of space-separated keywords (a "_" stands for a space inside one),
    longest first so "dra" is tried before "dr"."""
    forms = {keyword(w.replace("_", " ")) for w in words.split()}
    return "|".join(sorted(forms, key=len, reverse=True))
