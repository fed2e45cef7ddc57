"""The personal-data gate: nothing that looks like a person's data leaves the node.

Every text of a record's shareable projection is first put in one normal form (normal.py: NFKC,
format characters dropped, look-alike letters of mixed words made Latin, transliterated to
ASCII), which every detector reads: e-mail addresses (also obfuscated), phone numbers of every
EU numbering plan, IBANs and national identity numbers (whatever their separators), dates of
birth, street addresses, number plates, case numbers, IP addresses, messaging handles, and the
names of people this node knows (contact points, users, study-visit participants), whatever
their script, look-alike letters or inflection. A hit holds the record for review, reported at
the words as they were written. The hub runs the same detectors, without names.

The cost is bounded: a text longer than MAX_TEXT is not scanned but held ("too long to scan");
the texts of a body are normalised once, as one; every detector is linear in the text and runs
only where what it looks for could be (clues.py: digits, a keyword's first word, an "@"); runs
of digits are read group by group, each candidate judged once per scan (phones.py, numbers.py);
a detector reports at most MAX_HITS findings; and a record whose scan outlasts the gate's time,
or needs more validator calls than its budget, is held ("budget exhausted") rather than passed.
bench/gate.py prints the corpus figures, the cost per record and the worst case per MB.
"""

import re
import sys
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from itertools import accumulate
from typing import Any

from federation.gate.clues import Clues
from federation.gate.details import DETECTORS, links
from federation.gate.email import email_hits
from federation.gate.findings import (
    BUDGET,
    EMAIL_ADDRESS,
    HANDLE,
    IP_ADDRESS,
    SEPARATOR,
    TOO_LONG,
    Budget,
    Found,
    Hit,
    OutOfTime,
    without_overlaps,
)
from federation.gate.names import KnownName, NameIndex, known_names, name_of_address
from federation.gate.normal import Normal, normal
from federation.gate.numbers import Numbers, announced_as_not_personal, iban_hits, id_hits
from federation.gate.phones import phone_hits
from federation.projection import text_fields, text_values

__all__ = ["MAX_TEXT", "Gate", "Hit", "name_of_address"]

# Invisible characters that may stand between two words (zero-width spaces and joiners, word
# joiner, invisible operators, byte-order mark, Mongolian vowel separator).
ZERO_WIDTH = re.compile("[\u180e\u200b-\u200d\u2060-\u2064\ufeff]")
MAX_TEXT = 100_000  # characters of one text the gate reads; a longer one is held unread
BUDGET_SECONDS = 5.0  # a record's scan; a 100,000-character adversarial text takes well under


@dataclass(frozen=True)
class Gate:
    """The detectors, with what this node knows: its people and its country's numbering."""

    names: tuple[KnownName, ...] = ()
    home_region: str | None = None
    budget_seconds: float = BUDGET_SECONDS

    @classmethod
    def for_people(cls, names: Iterable[str], home_region: str | None = None) -> "Gate":
        return cls(tuple(known_names(names)), home_region)

    @cached_property
    def name_index(self) -> NameIndex:
        return NameIndex.of(self.names)

    def scan(self, body: Any) -> list[Hit]:
        """Every hit in the texts of a body. The texts are read as one (joined by a character
        no detector matches, put in the normal form once); each hit is reported in its own
        field, at the characters as written."""
        budget = Budget(self.budget_seconds)
        texts = text_values(body)
        kept = [i for i, text in enumerate(texts) if len(text) <= MAX_TEXT]
        hits: list[Hit] = []
        if len(kept) < len(texts):
            fields = text_fields(body)
            hits += [Hit(TOO_LONG, fields[i][0], 0, len(texts[i])) for i in _missing(kept, texts)]
        if not kept:
            return hits
        text = normal(SEPARATOR.join(texts[i] for i in kept))
        try:
            found = self._names(text, budget) + _written(self._details(text.text, budget), text)
        except OutOfTime:
            return without_overlaps([*hits, Hit(BUDGET, "(record)", 0, 0)])
        if found:
            hits += _placed(found, [texts[i] for i in kept], kept, text_fields(body))
        return without_overlaps(hits)

    def _names(self, text: Normal, budget: Budget) -> list[Found]:
        """Names, at the characters as written. An invisible character may stand inside a
        word ("Du<ZWSP>pont": dropped) or between two ("Jean<ZWSP>Dupont": a space): where
        there is one, the text is also read with each as a space."""
        if not self.names:
            return []
        budget.check()
        found = _written(self.name_index.hits(text), text)
        if ZERO_WIDTH.search(text.written):
            spaced = normal(ZERO_WIDTH.sub(" ", text.written))  # the same length
            budget.check()
            found += _written(self.name_index.hits(spaced), spaced)
        return found

    def _details(self, text: str, budget: Budget) -> list[Found]:
        clues = Clues(text)
        found = email_hits(clues)
        for detector in DETECTORS:
            budget.check()
            found += detector(clues)
        numbers = Numbers.of(text, clues.runs) if clues.digits else None
        if numbers:
            found += iban_hits(text, numbers)
            windows = numbers.around(2, 2, digits=8)
            found += phone_hits(text, self.home_region, windows, budget, announced_as_not_personal)
            found += id_hits(text, numbers, budget)
        if not found:
            return []
        paths = links(text)
        return [f for f in found if f[0] in IN_LINKS or not _inside(f, paths)]


IN_LINKS = {EMAIL_ADDRESS, HANDLE, IP_ADDRESS}  # what a link may hold and still be personal


def _missing(kept: list[int], texts: list[str]) -> list[int]:
    return sorted(set(range(len(texts))) - set(kept))


def _inside(found: Found, spans: list[tuple[int, int]]) -> bool:
    """Whether a finding lies within one of the spans (in order, not overlapping)."""
    _, start, end = found
    index = bisect_right(spans, (start, sys.maxsize)) - 1
    return index >= 0 and spans[index][0] <= start and end <= spans[index][1]


def _written(found: list[Found], text: Normal) -> list[Found]:
    """Findings in a normal form, at the characters of the text as written."""
    return [(what, *text.written_span(start, end)) for what, start, end in found]


def _placed(
    found: list[Found],
    written: list[str],
    kept: list[int],
    fields: list[tuple[str, str]],
) -> list[Hit]:
    """Findings in the texts as written, joined, reported in their own fields."""
    starts = list(accumulate((len(t) + len(SEPARATOR) for t in written[:-1]), initial=0))
    hits = []
    for detector, low, high in found:
        index = bisect_right(starts, low) - 1
        offset = starts[index]
        field = fields[kept[index]][0]
        hits.append(Hit(detector, field, low - offset, min(high - offset, len(written[index]))))
    return hits
