"""A person as a data-subject request names them, matched the way the personal-data gate
matches the people a node knows (federation.gate.names): whatever the case, accents, script,
look-alike letters or inflected ending. A surname alone matches too (a mention is a mention),
so an erasure is reviewed with `find` first.

Names given in one script are also looked for in the spellings the others give them: a Latin
"Papadopoulou" is the Bulgarian "Пападопулу" ("ou" as "u"), a Bulgarian "Мария" the Latin
"Maria" ("iya" as "ia"). E-mail addresses match whole, case-insensitively (and a name found
inside one takes the whole address); phone numbers by their last nine digits, however written.
"""

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property

from anyascii import anyascii

from federation.gate.names import NameIndex, known_names
from federation.gate.normal import normal

EMAIL = re.compile(r"[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+", re.UNICODE)
PHONE = re.compile(r"(?<![\w+])\+?\(?\d[\d\s().\-/]{5,24}\d(?!\w)")
PHONE_KEY = 9  # digits compared, from the end: the subscriber number without country or trunk
MIN_PHONE = 7
# Spellings a transliteration does not give (Latin <-> Bulgarian).
VARIANTS = (("ou", "u"), ("iya", "ia"), ("ya", "ia"))


def phone_key(number: str) -> str | None:
    digits = re.sub(r"\D", "", number)
    return digits[-PHONE_KEY:] if len(digits) >= MIN_PHONE else None


def spellings(name: str) -> set[str]:
    """A name, and its Latin spellings with the variants other scripts write."""
    latin = anyascii(name)
    out = {name, latin, *(latin.replace(old, new) for old, new in VARIANTS)}
    if not name.isascii():  # a Cyrillic "u" may be a Latin or Greek "ou"
        out |= {re.sub(r"(?<!o)u", "ou", s) for s in set(out) if s.isascii()}
    return {s for s in out if s.strip()}


@dataclass(frozen=True)
class PersonMatcher:
    """One person: their names (any script), e-mail addresses and phone numbers."""

    names: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    user_ids: frozenset[uuid.UUID] = frozenset()
    linked_ids: frozenset[str] = frozenset()
    _cache: dict[str, list[tuple[int, int]]] = field(
        default_factory=dict, compare=False, hash=False, repr=False
    )

    @classmethod
    def of(
        cls, names: Iterable[str], emails: Iterable[str], phones: Iterable[str]
    ) -> "PersonMatcher":
        return cls(
            tuple(n.strip() for n in names if n.strip()),
            tuple(e.strip().lower() for e in emails if e.strip()),
            tuple(p.strip() for p in phones if p.strip()),
        )

    def linked(self, user_ids: Iterable[uuid.UUID], linked_ids: Iterable[str]) -> "PersonMatcher":
        return PersonMatcher(
            self.names,
            self.emails,
            self.phones,
            frozenset(user_ids),
            frozenset(linked_ids) | {str(i) for i in user_ids},
        )

    @cached_property
    def index(self) -> NameIndex | None:
        every = {s for name in self.names for s in spellings(name)}
        found = known_names(every)
        return NameIndex.of(tuple(found)) if found else None

    @cached_property
    def phone_keys(self) -> frozenset[str]:
        return frozenset(k for k in map(phone_key, self.phones) if k)

    def is_phone(self, number: str) -> bool:
        key = phone_key(number)
        return key is not None and key in self.phone_keys

    def spans(self, text: str) -> list[tuple[int, int]]:
        if not text or not isinstance(text, str):
            return []
        if text not in self._cache:
            self._cache[text] = self._spans(text)
        return self._cache[text]

    def _spans(self, text: str) -> list[tuple[int, int]]:
        found: list[tuple[int, int]] = []
        if self.index is not None:
            written = normal(text)
            found += [written.written_span(a, b) for _, a, b in self.index.hits(written)]
        lowered = text.lower()
        for email in self.emails:
            found += [(m.start(), m.end()) for m in re.finditer(re.escape(email), lowered)]
        if self.phone_keys:
            found += [m.span() for m in PHONE.finditer(text) if self.is_phone(m.group())]
        addresses = [m.span() for m in EMAIL.finditer(text)] if found and "@" in text else []
        # A name inside an e-mail address takes the whole address.
        found = [next(((a, b) for a, b in addresses if a <= s < b), (s, e)) for s, e in found]
        return _merged(found)


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out
