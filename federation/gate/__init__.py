"""The personal-data gate: nothing that looks like a person's data leaves the node.

Detectors run on every text of a record's shareable projection: e-mail addresses (also written
"name [at] domain"), phone numbers in national or international format for every EU numbering
plan, IBANs, national identity numbers, and the names of people this node knows (contact points,
users, study-visit participants). Names are matched after case, accent and look-alike-letter
folding, in Latin, Greek and Cyrillic script and in Latin transliteration, and with inflected
endings (Παπαδόπουλος / Παπαδόπουλου, Петров / Петрова). A hit holds the record for review.
The hub runs the same detectors on import.
"""

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from itertools import accumulate
from typing import Any

from federation.gate.email import email_hits
from federation.gate.findings import Hit, without_overlaps
from federation.gate.names import KnownName, NameIndex, known_names
from federation.gate.numbers import Numbers, iban_hits, id_hits, phone_hits
from federation.projection import text_fields, text_values

__all__ = ["Gate", "Hit"]

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
        found = email_hits(joined)
        numbers = Numbers.of(joined)
        if numbers:
            found += iban_hits(joined, numbers)
            found += phone_hits(joined, self.home_region, numbers)
            found += id_hits(joined, numbers)
        if found:
            fields = text_fields(body)  # the same texts in the same order, with their paths
            starts = list(accumulate((len(text) + 1 for text in texts[:-1]), initial=0))
            for detector, start, end in found:
                index = bisect_right(starts, start) - 1
                field, text = fields[index]
                offset = starts[index]
                hits.append(Hit(detector, field, start - offset, min(end - offset, len(text))))
        return without_overlaps(hits)
