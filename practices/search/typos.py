"""Typos: a word that matches nothing, corrected against the index's own vocabulary.

The SQL adapter corrects a query word matching nothing against its index's terms
(`SqlSearch._correct`); Meilisearch applies its own rule, the same. The rule is Meilisearch's:
a word of five letters or more may be one edit away from a word of the index (an insertion, a
deletion, a substitution or two neighbours swapped), a word of nine letters or more two edits.
Among the words that near, the fewest edits win, then the word found in the most records, then
the first in alphabetical order (so the answer is the same on every node).

Symmetric delete (the SymSpell idea): every vocabulary word is stored under the strings it
gives with up to `MAX_EDITS` letters deleted; a query word's own deletions meet those keys only
where the two words may be that close, and each candidate is then checked with the true
distance (optimal string alignment: Damerau-Levenshtein without edits on edited text).
Looking a word up costs a few hundred dictionary probes, whatever the vocabulary's size;
storing deletes of two letters only for words of seven letters or more (the only ones a nine-
letter word can be two edits from) keeps the table small.
"""

from collections.abc import Iterable, Iterator, Mapping

MIN_LENGTH = 5  # shorter words are never corrected
TWO_EDITS_FROM = 9  # a word this long may be two edits away
MAX_EDITS = 2
# Deletes are taken from a word's first letters only (SymSpell's prefix): two words within
# two edits have prefixes within two edits, so no correction is lost, and a long word costs
# as many keys as a short one. Every candidate is checked on the whole word.
PREFIX = 7


def allowed_edits(word: str) -> int:
    if len(word) >= TWO_EDITS_FROM:
        return 2
    if len(word) >= MIN_LENGTH:
        return 1
    return 0


def _deletes(word: str, edits: int) -> Iterator[str]:
    """The word with up to ``edits`` letters left out, the word itself included."""
    seen = {word}
    frontier = [word]
    yield word
    for _ in range(edits):
        following = []
        for w in frontier:
            for i in range(len(w)):
                shorter = w[:i] + w[i + 1 :]
                if shorter not in seen:
                    seen.add(shorter)
                    following.append(shorter)
                    yield shorter
        frontier = following


def distance(a: str, b: str, limit: int = MAX_EDITS) -> int:
    """Optimal string alignment distance of ``a`` and ``b``, or ``limit + 1`` when it is more
    than ``limit`` (computed within a band of that width)."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    if a == b:
        return 0
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [limit + 1] * len(b)
        low, high = max(1, i - limit), min(len(b), i + limit)
        for j in range(low, high + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            best = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                best = min(best, previous2[j - 2] + 1)
            current[j] = best
        if min(current[max(0, low - 1) : high + 1]) > limit:
            return limit + 1
        previous2, previous = previous, current
    return min(previous[len(b)], limit + 1)


class Corrector:
    """Corrections of words against a vocabulary (folded index terms), with each word's record
    count when known (a word of more records wins a tie)."""

    def __init__(self, vocabulary: Mapping[str, int] | Iterable[str]) -> None:
        counts = (
            dict(vocabulary) if isinstance(vocabulary, Mapping) else dict.fromkeys(vocabulary, 1)
        )
        self.counts: dict[str, int] = counts
        # a key's words: one word (most keys) or a list of them
        self.by_delete: dict[str, str | list[str]] = {}
        for word in counts:
            self._add(word)

    def _add(self, word: str) -> None:
        # A vocabulary word can be corrected to from words one letter shorter (length >= 5),
        # so words of four letters and more are stored; two-letter deletes only where a word
        # of nine letters or more can reach them (seven letters and more).
        if len(word) < MIN_LENGTH - 1:
            return
        edits = 2 if len(word) >= TWO_EDITS_FROM - MAX_EDITS else 1
        by_delete = self.by_delete
        for key in _deletes(word[:PREFIX], edits):
            held = by_delete.get(key)
            if held is None:
                by_delete[key] = word
            elif isinstance(held, str):
                by_delete[key] = [held, word]
            else:
                held.append(word)

    def add(self, word: str, count: int = 1) -> None:
        """A word the index has gained (or more records of one it had)."""
        if word in self.counts:
            self.counts[word] += count
            return
        self.counts[word] = count
        self._add(word)

    def __contains__(self, word: str) -> bool:
        return word in self.counts

    def candidates(self, word: str, limit: int | None = None) -> list[tuple[int, str]]:
        """The vocabulary's words within ``limit`` edits (by default those ``word`` allows for
        its length; a stem is given the limit of the word typed), as (edits, word), best
        first; the word itself when the vocabulary has it."""
        if word in self.counts:
            return [(0, word)]
        if limit is None:
            limit = allowed_edits(word)
        elif len(word) < TWO_EDITS_FROM - MAX_EDITS:
            # the table holds two-letter deletes of words of seven letters or more only: a
            # shorter word (a stem) is corrected by one edit at most, and no candidate is lost
            limit = min(limit, 1)
        else:
            limit = min(limit, MAX_EDITS)
        if not limit:
            return []
        found: dict[str, int] = {}
        for key in _deletes(word[:PREFIX], limit):
            held = self.by_delete.get(key)
            if held is None:
                continue
            for candidate in (held,) if isinstance(held, str) else held:
                if candidate not in found:
                    found[candidate] = distance(word, candidate, limit)
        return sorted(
            ((d, w) for w, d in found.items() if d <= limit),
            key=lambda dw: (dw[0], -self.counts[dw[1]], dw[1]),
        )

    def correct(self, word: str, limit: int | None = None) -> str | None:
        """The best correction of a word the vocabulary lacks; None when it has the word, or
        when nothing is near enough."""
        if word in self.counts:
            return None
        best = self.candidates(word, limit)
        return best[0][1] if best else None

    def correct_stem(self, typed: str) -> str | None:
        """For a vocabulary of stems: the stem a typed word (folded, whole) was meant to begin
        with, when the word itself matches nothing. A typo inside a suffix keeps the stemmer
        from taking the suffix off ("rehabilitaion" stays as typed, two letters longer than
        "rehabilitation" and four from its stem "rehabilit"), so each candidate stem sharing
        the word's first letters (within its edits) is measured against the word's start of
        the stem's length, one letter more or less; the nearest wins, then the longest stem,
        then the commoner. Words shorter than five letters are never corrected."""
        limit = allowed_edits(typed)
        if not limit or typed in self.counts:
            return None
        limit = min(limit, 1) if len(typed) < TWO_EDITS_FROM else limit
        found: dict[str, int] = {}
        for key in _deletes(typed[:PREFIX], limit):
            held = self.by_delete.get(key)
            if held is None:
                continue
            for stem in (held,) if isinstance(held, str) else held:
                if stem in found or len(stem) < MIN_LENGTH - 1 or len(stem) > len(typed) + 1:
                    continue
                found[stem] = min(
                    distance(typed[: len(stem) + shift], stem, limit) for shift in (-1, 0, 1)
                )
        best = sorted(
            ((d, s) for s, d in found.items() if d <= limit),
            key=lambda ds: (ds[0], -len(ds[1]), -self.counts[ds[1]], ds[1]),
        )
        return best[0][1] if best else None
