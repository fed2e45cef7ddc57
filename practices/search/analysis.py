"""Word forms in five languages: how a text becomes index terms, and a query the terms it matches.

Both adapters index what `analyse_text` makes of each text (`IndexDocument.texts`) and search
what `query_terms` makes of a query (issue 16).

A text is analysed in its own language: case, accents and scripts are folded as `text.py` does
(`node.core.text.fold`, British and American spellings met, prefixed compounds both joined and
split), stop words of that language are left out, and each word is reduced to its stem, so that
the forms of a word meet: `φυλακές`, `φυλακή`, `φυλακών` → `φυλακ`; `затвори`, `затвора`,
`затворите` → `затвор`; `reclusos`, `recluso` → `reclus`. A query does not say its language, so
each of its words is analysed in every language asked (the reader's and those of the records
present) and matches any of those forms.

Each word is stemmed twice, before and after folding, and both stems are kept when they differ
(for 2% of the sample's distinct words): a stemmer reads the accents of a properly written
word (`avaliação` → `avali`), while a query typed without them is stemmed folded (`avaliacao`
→ `avaliaca`); a record carrying both forms is found either way. French feminine participles
typed without accents (`radicalisees`) lose their extra `e` first, and Portuguese `-ões`/`-ães`
plurals become `-ão` (Snowball leaves `prisões` and `prisão` apart).

Library: chosen by measurement (6 December 2026, this repository's .venv, Python 3.11, on the
2-core machine while other work ran on it, load average ~13: the speeds are indicative only;
the scripts are described in the report of issue 16's groundwork):

    candidate                      languages        raw words/s   word-form recall   memory
    PyStemmer 3.1 (Snowball, C)    en fr pt el          661,000   0.84 (73/87)        ~1 MB
      + bulstem 0.3.3 (BulStem)    bg                 (together)  (both orders)
    the same, folded first only    all five                   -   0.82 (71/87)
    simplemma 2.0 (lemmatiser)     all five             467,000   0.68 (59/87)     +202 MB
    folding only (today's index)   -                          -   0.40 (35/87)          -
    snowballstemmer 3.1: the same Snowball algorithms; it hands over to PyStemmer when that
    is installed, so its pure-Python speed was not measured.

"raw words/s": the sample practices' words stemmed (lemmatised) one by one in their record's
language, without any cache. "word-form recall": of the (query, expected record) pairs of
the judged set's 38 word-form, multi-word and exact queries (none cross-language, none typo),
the share where every query word that is not a stop word shares a form with the record (its
text analysed in its language, its translations in theirs; the query in all five). The pairs
still missed need concepts ("prisão" for "prisional", "mentor" for a record tagged
mentoring), not word forms. simplemma loses on words typed without accents (its dictionaries
hold accented forms: Greek queries are almost all missed), on unknown words and on Bulgarian
definite forms ("пробационната", "дерадикализацията").

This module's own cost: `analyse_text` splits a text at white space and looks each token up
in a cache of the tokens seen (`_Tokens`; a token's words are found and stemmed once): on
`bench/search.py`'s 20,000 generated practices (1.8 million words) 4.9 million words/s, against
2.1 million for the text's words found by a regular expression and looked up one by one in a
cache of words (7 December 2026, both in one process, best of five, load average 7); a word
seen for the first time costs ~12 µs (fold, spellings, both stems).

Chosen: PyStemmer (MIT/BSD) for English, French, Portuguese and Greek, and BulStem (`bulstem`,
Apache-2.0, the rules of Nakov's BulStem) for Bulgarian. Other languages (a record in German,
say) are folded only.
"""

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache, lru_cache

import Stemmer  # type: ignore[import-not-found]  # PyStemmer ships no stubs
from bulstem.stem import BulStemmer  # type: ignore[import-untyped]

from node.core.text import fold
from practices.search.port import IndexDocument
from practices.search.text import (
    COMPOUND,
    MAX_QUERY_TOKENS,
    MAX_TOKEN_LENGTH,
    WORD,
    QueryTerms,
    canonical_word,
    normalise,
)

LANGUAGES = ("en", "fr", "pt", "el", "bg")
# The version of what this module makes of a text: an index made with another one (0: the
# folded text of before) is rebuilt at start-up. Raise it with any change to the index forms.
ANALYSIS_VERSION = 1
SNOWBALL = {"en": "english", "fr": "french", "pt": "portuguese", "el": "greek"}
# Words of one or two letters are kept (a query for "O7" or "EU" must find them), but are not
# stemmed.
MIN_STEM_LENGTH = 3
FRENCH_FEMININE_PARTICIPLE = re.compile(r"(?<=\w{3})e(es?)$")
# Portuguese plurals in -ões and -ães (folded: -oes, -aes) to the singular's -ão.
PORTUGUESE_PLURAL = re.compile(r"[õã]es$")
PORTUGUESE_PLURAL_FOLDED = re.compile(r"[oa]es$")

# Stop words, folded: the function words of each language that a query may carry and that
# say nothing of what is searched ("réinsertion des détenus", "desporto nas prisões").
STOP_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset(
        "a an and are as at be by for from has have in into is it its of on or that the their "
        "this to was were which with between about against among".split()
    ),
    "fr": frozenset(
        "a au aux avec ce ces d dans de des du elle en est et il ils l la le les leur leurs "
        "ou par pour qu que qui sa se ses son sur un une entre contre aupres chez".split()
    ),
    "pt": frozenset(
        "a ao aos as com da das de do dos e em entre na nas no nos o os ou para pela pelas "
        "pelo pelos por que se sem sobre um uma umas uns".split()
    ),
    "el": frozenset(
        "ο η το οι τα του τησ των τον την στο στη στην στον στα στισ στουσ και ή για με "
        "απο σε που ως προσ κατα μετα ενα ενασ μια μιασ να θα δεν ειναι τουσ τισ".split()
    ),
    "bg": frozenset(
        "а в във е за и или к като към на не о от по под при с със след срещу че "
        "са се ще до из между чрез".split()
    ),
}

# BulStem's rules: the one-letter-context rule set, rules seen at least twice (the
# algorithm's published best setting for inflectional stemming).
BULSTEM_CONTEXT = 1
BULSTEM_MIN_FREQUENCY = 2


@cache
def _stemmer(language: str) -> Callable[[str], str] | None:
    if language in SNOWBALL:
        stemmer = Stemmer.Stemmer(SNOWBALL[language])
        stemmer.maxCacheSize = 0  # our own cache holds the words, one level up
        stem: Callable[[str], str] = stemmer.stemWord
        return stem
    if language == "bg":
        bulgarian = BulStemmer.from_file(
            f"stem-context-{BULSTEM_CONTEXT}",
            min_freq=BULSTEM_MIN_FREQUENCY,
            left_context=BULSTEM_CONTEXT,
        )
        bulgarian_stem: Callable[[str], str] = bulgarian.stem
        return bulgarian_stem
    return None


@lru_cache(maxsize=100_000)
def word_forms(word: str, language: str) -> tuple[str, ...]:
    """The index forms of one word (lower-cased, accents kept) in ``language``: its stem read
    with accents then folded, and its stem read folded, when they differ. A stop word of the
    language has none."""
    folded = canonical_word(fold(word))[:MAX_TOKEN_LENGTH]
    if folded in STOP_WORDS.get(language, ()):
        return ()
    stem = _stemmer(language)
    if stem is None or len(folded) < MIN_STEM_LENGTH or not folded.isalpha():
        return (folded,)
    if language == "fr" and folded.endswith("us") and len(folded) >= 5:
        # Snowball keeps -us ("détenus") but stems -ues ("détenues" → "détenu").
        word, folded = word[:-1], folded[:-1]
    if language == "fr" and FRENCH_FEMININE_PARTICIPLE.search(folded):
        # "radicalisées" typed without accents: Snowball reads -ées, not -ees, as a suffix.
        folded = FRENCH_FEMININE_PARTICIPLE.sub(r"\1", folded)
    if language == "pt":
        word = PORTUGUESE_PLURAL.sub("ão", word)
        folded = PORTUGUESE_PLURAL_FOLDED.sub("ao", folded)
    # a stem of one or two letters (Snowball's Greek takes "κίσα" to "κ") would meet every
    # word it starts: the word is kept whole instead
    accented = fold(stem(word))
    accented = accented if len(accented) >= MIN_STEM_LENGTH else folded
    plain = stem(folded)
    plain = plain if len(plain) >= MIN_STEM_LENGTH else folded
    return (accented,) if accented == plain else (accented, plain)


def _words(text: str, *, split: bool = True) -> list[str]:
    """The words of a text, lower-cased with accents kept, prefixed compounds both joined and
    split (as `text.normalise` does); joined only when not ``split`` (a query's compound: a
    record writing it joined has no split form, one writing it with a hyphen has both)."""
    lowered = text.casefold()
    if "-" in lowered:
        joined = (lambda m: f"{m[1]}{m[2]} {m[1]} {m[2]}") if split else (lambda m: m[1] + m[2])
        lowered = COMPOUND.sub(joined, lowered)
    return WORD.findall(lowered)


class _Forms(dict[str, str]):
    """Each word's index forms in one language, joined by spaces ("" for a stop word), computed
    once: a text's words are mapped by dictionary look-ups at C speed, and the rare new word
    pays for its stemming. Cleared when it holds `CACHE_WORDS` words."""

    def __init__(self, language: str) -> None:
        super().__init__()
        self.language = language

    def __missing__(self, word: str) -> str:
        if len(self) >= CACHE_WORDS:
            self.clear()
        forms = self[word] = " ".join(word_forms(word, self.language))
        return forms


CACHE_WORDS = 500_000
_FORMS: dict[str, _Forms] = {}


def _forms_of(language: str) -> _Forms:
    forms = _FORMS.get(language)
    if forms is None:
        forms = _FORMS[language] = _Forms(language)
    return forms


# A token with no word in it ("-", "—"): no term, and nothing in the joined string.
NO_WORDS = "\0"


class _Tokens(dict[str, str]):
    """Each token of a text as written (between white space: case, accents and punctuation
    kept) mapped to its words' forms in one language, joined by spaces; `NO_WORDS` for a token
    with none. A text is then split and each token looked up, at C speed: words repeat across
    records, and so do most tokens ("Prison", "prison,"). No word spans white space (`WORD`,
    `COMPOUND`), and case folds letter by letter, so a text's tokens analysed one by one give
    the text's analysis. Cleared when it holds `CACHE_TOKENS` tokens."""

    def __init__(self, language: str) -> None:
        super().__init__()
        self.forms = _forms_of(language)

    def __missing__(self, token: str) -> str:
        if len(self) >= CACHE_TOKENS:
            self.clear()
        words = _words(token)
        value = self[token] = " ".join(map(self.forms.__getitem__, words)) if words else NO_WORDS
        return value


CACHE_TOKENS = 200_000
_TOKENS: dict[str, _Tokens] = {}


def analyse_text(text: str, language: str) -> str:
    """`analyse`, as one string of terms separated by spaces (what an index column takes)."""
    tokens = _TOKENS.get(language)
    if tokens is None:
        tokens = _TOKENS[language] = _Tokens(language)
    parts = list(map(tokens.__getitem__, text.split()))
    if NO_WORDS in parts:
        parts = [part for part in parts if part is not NO_WORDS]
    return " ".join(parts)


def analyse_words(text: str, language: str) -> list[tuple[str, ...]]:
    """The forms of each word of a text that is not a stop word, word by word (for matching
    a phrase: a concept's name)."""
    return [forms for word in _words(text) if (forms := word_forms(word, language))]


def analyse(text: str, language: str) -> list[str]:
    """The index terms of a text written in ``language`` (a language this module does not
    stem is folded only), in text order; a word with two forms gives both, one after the
    other."""
    return analyse_text(text, language).split()


@dataclass(frozen=True)
class QueryWord:
    """One word of a query: what was typed (folded), the index terms any of which it matches
    (its forms in each language asked), and, for the word still being typed, the prefix an
    index term may start with."""

    typed: str
    forms: frozenset[str]
    prefix: str | None = None


@dataclass(frozen=True)
class AnalysedQuery:
    """Words ANDed, each matching any of its forms. Stop words are left out (`dropped`) unless
    the query has nothing else."""

    words: tuple[QueryWord, ...]
    dropped: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.words


def query_terms(query: str, languages: Iterable[str] = LANGUAGES) -> AnalysedQuery:
    """A query's words as index terms, in every language of ``languages`` (the reader's and
    those of the records present). Only word characters survive, as in `text.query_terms`: no
    query syntax reaches an index. The last word, when the query does not end in a space, is
    also matched as a prefix (as-you-type), once it has two letters: the shortest of its
    stems, so that a word typed in full ("reaffiliation") still meets its stem
    ("reaffili")."""
    asked = tuple(dict.fromkeys(languages)) or LANGUAGES
    raw = _words(query[:2000], split=False)
    typed: list[tuple[str, str]] = list(
        {canonical_word(fold(w))[:MAX_TOKEN_LENGTH]: w for w in raw}.items()
    )[:MAX_QUERY_TOKENS]
    words: list[QueryWord] = []
    dropped: list[str] = []
    for folded, word in typed:
        forms = {f for language in asked for f in word_forms(word, language)}
        stop = any(folded in STOP_WORDS.get(language, ()) for language in asked)
        if stop:
            dropped.append(folded)
            continue
        words.append(QueryWord(folded, frozenset(forms or {folded})))
    if not words and dropped:  # nothing but stop words: search them as they are
        words = [QueryWord(w, frozenset({w})) for w in dropped]
        dropped = []
    being_typed = bool(words) and bool(typed) and not query[-1:].isspace()
    if being_typed and typed[-1][0] == words[-1].typed and len(words[-1].typed) >= 2:
        last = words[-1]
        stems = [
            f for f in last.forms if last.typed.startswith(f) and len(f) >= MIN_STEM_LENGTH
        ] or [last.typed]
        words[-1] = QueryWord(last.typed, last.forms, min(stems, key=len))
    return AnalysedQuery(tuple(words), tuple(dropped))


@lru_cache(maxsize=64)
def _forms_in(languages: tuple[str, ...]) -> Callable[[str], tuple[str, ...]]:
    """A word's forms in any of these languages (for marking it in a snippet)."""

    @lru_cache(maxsize=50_000)
    def forms(word: str) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f for lang in languages for f in word_forms(word, lang)))

    return forms


def snippet_terms(query: str, languages: Iterable[str] = LANGUAGES) -> QueryTerms:
    """The terms a snippet marks: every form of the query's words in these languages (a word
    of the text is marked when one of its forms is among them), the word being typed as a
    prefix."""
    asked = tuple(dict.fromkeys(languages)) or LANGUAGES
    analysed = query_terms(query, asked)
    last = analysed.words[-1].prefix if analysed.words else None
    terms = [f for word in analysed.words for f in sorted(word.forms) if f != last]
    if last is not None:
        terms.append(last)
    return QueryTerms(tuple(dict.fromkeys(terms)), last is not None, _forms_in(asked))


def reader_languages(accept_language: str | None) -> tuple[str, ...]:
    """The analysed languages an Accept-Language header names, in its order of preference
    (quality values read; anything malformed is left out)."""
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate((accept_language or "")[:500].split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        language = tag.strip().split("-")[0].lower()
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        if language in LANGUAGES and quality > 0:
            ranked.append((-quality, i, language))
    return tuple(dict.fromkeys(language for _, _, language in sorted(ranked)))


def document_terms(document: IndexDocument) -> tuple[str, str]:
    """A document's titles and its body as index terms, each text analysed in its language
    (a document with no `texts`: folded only, as before)."""
    if not document.texts:
        return normalise(document.title_text), normalise(document.body_text)
    title = " ".join(analyse_text(title, language) for language, title, _ in document.texts)
    body = " ".join(analyse_text(body, language) for language, _, body in document.texts)
    return title, body
