"""The controlled vocabularies' concepts in five languages, so that a query word naming a concept
in any of them finds the records filed under it and the records that name it in another.

The SQL adapter matches a query's concepts through their names in every language and the facet
they are filed under; the Meilisearch adapter holds their names as synonyms. Each concept has
its label in each language (the web interface's label of the code and that label's translation
in the web catalogues: `tests/practices/test_analysis.py` holds them equal, so the web may
later read its labels from here) and synonyms: other names practitioners use, and the inflected
forms a stemmer does not join. Beside the vocabularies filed as facets (kind, intervention
type, process focus, setting, target group), the registry's areas and a few domain terms that
name no facet (radicalisation, terrorism, recidivism, ...) are concepts too: they match text
only.

No maintained multilingual thesaurus is installable from the package registries: PyPI's
`eurovoc` package downloads EuroVoc from the EU's site at run time, which this project's
machines cannot reach (and it could not be inspected here), so the terms are written out (in
`concepts.json`); EuroVoc, a general-purpose thesaurus, would in any case not cover codes such
as "exit programme" or "risk and needs assessment".
"""

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from practices.search.analysis import LANGUAGES, AnalysedQuery, analyse_words

# The search facet each vocabulary files records under; the others match text only.
FACET_OF: dict[str, str | None] = {
    "kind": "kind",
    "intervention_type": "intervention_type",
    "process_focus": "process_focus",
    "setting": "setting",
    "target_group": "target_group",
    "area": None,
    "term": None,
}


@dataclass(frozen=True)
class Concept:
    vocabulary: str
    code: str
    labels: Mapping[str, str]
    synonyms: Mapping[str, tuple[str, ...]]

    @property
    def facet(self) -> str | None:
        return FACET_OF[self.vocabulary]

    def names(self, language: str) -> tuple[str, ...]:
        """Its label and synonyms in ``language``."""
        label = self.labels.get(language)
        return ((label,) if label else ()) + self.synonyms.get(language, ())


def _load() -> tuple[Concept, ...]:
    """The concepts, from `concepts.json` beside this module: per concept its vocabulary, code,
    label in each of the five languages and synonyms by language."""
    with (Path(__file__).parent / "concepts.json").open(encoding="utf-8") as f:
        rows = json.load(f)
    return tuple(
        Concept(
            row["vocabulary"],
            row["code"],
            {lang: row["labels"][lang] for lang in LANGUAGES},
            {lang: tuple(names) for lang, names in row["synonyms"].items()},
        )
        for row in rows
    )


CONCEPTS: tuple[Concept, ...] = _load()


@dataclass(frozen=True)
class ConceptMatch:
    """A concept named by the query's words `start` to `end` (exclusive, in
    `AnalysedQuery.words`)."""

    concept: Concept
    start: int
    end: int


Phrase = tuple[frozenset[str], ...]


@lru_cache(maxsize=1)
def _phrases() -> dict[str, list[tuple[Phrase, Concept]]]:
    """Every name of every concept as the index forms of its words, by its first word's
    forms: a query word's forms find the names that may start there."""
    by_first: dict[str, list[tuple[Phrase, Concept]]] = {}
    for concept in CONCEPTS:
        for language in LANGUAGES:
            for name in concept.names(language):
                phrase = tuple(frozenset(forms) for forms in analyse_words(name, language))
                if not phrase:
                    continue
                for form in phrase[0]:
                    entries = by_first.setdefault(form, [])
                    if (phrase, concept) not in entries:
                        entries.append((phrase, concept))
    return by_first


def find_concepts(query: AnalysedQuery) -> list[ConceptMatch]:
    """The concepts the query's words name, in any language, left to right, each run of words
    taken by its longest name (one run may name several concepts: "Prevention" is a process
    focus and an area)."""
    phrases = _phrases()
    words = query.words
    found: list[ConceptMatch] = []
    i = 0
    while i < len(words):
        best: list[tuple[int, Concept]] = []
        for form in words[i].forms:
            for phrase, concept in phrases.get(form, ()):
                end = i + len(phrase)
                if end <= len(words) and all(
                    words[i + k].forms & phrase[k] for k in range(len(phrase))
                ):
                    best.append((end, concept))
        if not best:
            i += 1
            continue
        longest = max(end for end, _ in best)
        seen: set[tuple[str, str]] = set()
        for end, concept in best:
            if end == longest and (concept.vocabulary, concept.code) not in seen:
                seen.add((concept.vocabulary, concept.code))
                found.append(ConceptMatch(concept, i, end))
        i = longest
    return found


def concept(vocabulary: str, code: str) -> Concept:
    for c in CONCEPTS:
        if c.vocabulary == vocabulary and c.code == code:
            return c
    raise KeyError((vocabulary, code))


def expansion(concept: Concept, languages: Iterable[str] = LANGUAGES) -> dict[str, list[Phrase]]:
    """The concept's names in each language as phrases of index forms: what a record written
    in that language says when it names the concept (to match, ranked below the words the
    query typed)."""
    return {
        language: [
            tuple(frozenset(forms) for forms in analyse_words(name, language))
            for name in concept.names(language)
        ]
        for language in languages
    }


def by_facet() -> dict[str, list[Concept]]:
    """The concepts filed as each facet's values."""
    out: dict[str, list[Concept]] = {}
    for c in CONCEPTS:
        if c.facet is not None:
            out.setdefault(c.facet, []).append(c)
    return out
