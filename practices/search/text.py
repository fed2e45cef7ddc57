"""How text is prepared for the index and how a query becomes safe index terms.

The same normalisation runs on documents and on queries, in every adapter: case and accents
are folded (Latin, Greek, Cyrillic), British and American spellings of the field's words meet
(radicalisation/radicalization, programme/program, ...), and prefixed compounds are indexed
both joined and split ("de-radicalisation" is found as "deradicalisation" and "radicalisation").
"""

import html
import re
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

from node.core.text import fold

MAX_QUERY_TOKENS = 12
MAX_TOKEN_LENGTH = 40
WORD = re.compile(r"[^\W_]+")
COMPOUND = re.compile(r"\b(de|re|dis|co|multi|inter|counter|post|pre|non|ex|self)-([^\W_]+)")
# -ise/-isation (British) and -ize/-ization (American) meet on the -is- form.
IZE = re.compile(r"(?<=\w{3})iz(e|es|ed|ing|er|ers|ation|ations|ational)\b")
PARTIAL_IZE = re.compile(r"(?<=\w{3})iz(?=(a|at|ati|atio|e)?$)")
SPELLINGS = {
    "behaviour": "behavior",
    "behaviours": "behaviors",
    "behavioural": "behavioral",
    "counselling": "counseling",
    "counsellor": "counselor",
    "counsellors": "counselors",
    "programme": "program",
    "programmes": "programs",
    "centre": "center",
    "centres": "centers",
    "defence": "defense",
    "offence": "offense",
    "offences": "offenses",
    "licence": "license",
    "judgement": "judgment",
    "labour": "labor",
}


def canonical_word(word: str) -> str:
    """One spelling for a word written several ways (British and American, -ise and -ize)."""
    word = SPELLINGS.get(word, word)
    return IZE.sub(lambda m: "is" + m.group(1), word)


# The same rules, found fast in a whole text of words joined by spaces: each pattern opens with
# letters to look for, and a word's start is checked where one is found.
COMPOUND_PREFIXES = (
    "de",
    "re",
    "dis",
    "co",
    "multi",
    "inter",
    "counter",
    "post",
    "pre",
    "non",
    "ex",
    "self",
)
SPELLING_HINT = re.compile("|".join(sorted({word[:5] for word in SPELLINGS})))
SPELLING = re.compile(r"\b(?:" + "|".join(sorted(SPELLINGS, key=len, reverse=True)) + r")\b")
IZE_SUFFIX = re.compile(r"iz(e|es|ed|ing|er|ers|ation|ations|ational)\b")


def _compounds(folded: str) -> str:
    for hyphen in re.finditer("-", folded):
        if folded[max(0, hyphen.start() - 8) : hyphen.start()].endswith(COMPOUND_PREFIXES):
            return COMPOUND.sub(lambda m: f"{m[1]}{m[2]} {m[1]} {m[2]}", folded)
    return folded


def _ise(match: re.Match[str]) -> str:
    start, words = match.start(), match.string
    if start >= 3 and " " not in words[start - 3 : start]:  # IZE's three letters before
        return "is" + match.group(1)
    return match.group()


def normalise(text: str) -> str:
    """Index form of a text: folded, compounds both joined and split, spellings unified.
    The same as `canonical_word` of each word, joined by spaces (a property test holds the two
    together), in a few passes over the whole text."""
    words = " ".join(WORD.findall(_compounds(fold(text))))
    if SPELLING_HINT.search(words):
        words = SPELLING.sub(lambda m: SPELLINGS[m.group()], words)
    return IZE_SUFFIX.sub(_ise, words) if "iz" in words else words


@dataclass(frozen=True)
class QueryTerms:
    """What the user typed, as index terms. Only word characters survive: nothing a query
    language could read as syntax (quotes, operators, wildcards, NEAR, column filters)."""

    terms: tuple[str, ...]
    prefix_last: bool
    # A text's word as the terms above are made (`analysis.snippet_terms`: its forms in the
    # query's languages); None: `normalise`.
    forms_of: Callable[[str], Iterable[str]] | None = None

    def forms(self, text: str) -> list[str]:
        if self.forms_of is None:
            return normalise(text).split()
        return [f for word in WORD.findall(text.casefold()) for f in self.forms_of(word)]

    @property
    def empty(self) -> bool:
        return not self.terms


def query_terms(text: str) -> QueryTerms:
    folded = COMPOUND.sub(lambda m: f"{m[1]}{m[2]}", fold(text[:2000]))
    words = [canonical_word(w)[:MAX_TOKEN_LENGTH] for w in WORD.findall(folded)]
    words = list(dict.fromkeys(words))[:MAX_QUERY_TOKENS]
    # As-you-type: the word being typed matches as a prefix, once it has two letters.
    prefix = bool(words) and not text[-1:].isspace() and len(words[-1]) >= 2
    if prefix:
        words[-1] = PARTIAL_IZE.sub("is", words[-1])
    return QueryTerms(tuple(words), prefix)


def matches(word: str, query: QueryTerms) -> bool:
    forms = query.forms(word)
    last = query.terms[-1] if query.prefix_last else None
    return any(f in query.terms or (last is not None and f.startswith(last)) for f in forms)


# A snippet looks for the query's words in the first this many characters of a text: a record's
# text may be long, and a search page builds a snippet per hit.
SNIPPET_REACH = 20_000
TOKEN = re.compile(r"\S+")


def snippet(text: str, query: QueryTerms, *, words: int = 30) -> str:
    """`excerpt`, remembered for the latest texts and queries (not the longest texts): the
    same hits come back for the next page of a search and for a search many people make."""
    if len(text) <= SNIPPET_REACH:
        return _remembered(text, query, words)
    return excerpt(text, query, words=words)


@lru_cache(maxsize=2048)
def _remembered(text: str, query: QueryTerms, words: int) -> str:
    return excerpt(text, query, words=words)


def excerpt(text: str, query: QueryTerms, *, words: int = 30) -> str:
    """An HTML-safe excerpt of ``text`` around the first match (within `SNIPPET_REACH`
    characters; else its start), matches wrapped in <mark>. Only the tokens up to the end of
    the excerpt are read, and a word is tested once."""
    known: dict[str, bool] = {}

    def hit(token: str) -> bool:
        found = known.get(token)
        if found is None:
            found = known[token] = matches(token, query)
        return found

    tokens = TOKEN.finditer(text)
    before: deque[re.Match[str]] = deque(maxlen=words // 3)
    window: list[re.Match[str]] = []
    skipped = False  # tokens left out before the excerpt
    if query.terms and _may_match(text[:SNIPPET_REACH], query):
        for token in tokens:
            if token.start() >= SNIPPET_REACH:
                break
            if hit(token.group()):
                window.append(token)
                break
            if len(before) == before.maxlen:
                skipped = True
            before.append(token)
    found = bool(window)
    if not found:  # no match: the excerpt is the text's start
        tokens, before, skipped = TOKEN.finditer(text), deque(), False
    window = [*before, *window]
    while len(window) < words and (following := next(tokens, None)) is not None:
        window.append(following)
    more = len(window) >= words and next(tokens, None) is not None
    if not window:
        return ""
    out = [
        f"<mark>{html.escape(t.group())}</mark>"
        if found and hit(t.group())
        else html.escape(t.group())
        for t in window
    ]
    return ("… " if skipped else "") + " ".join(out) + (" …" if more else "")


def _may_match(text: str, query: QueryTerms) -> bool:
    """Whether any word of ``text`` can match: one pass over the whole text, so that a text
    with no match costs no test per word. Each distinct word is analysed once, and the forms
    are tested together (a set's intersection; the prefix looked for in their joined text,
    where a space comes only between forms)."""
    if query.forms_of is None:
        forms = set(normalise(text).split())
    else:
        forms = set().union(*map(query.forms_of, set(WORD.findall(text.casefold()))))
    if not forms.isdisjoint(query.terms):
        return True
    if not query.prefix_last or not forms:
        return False
    return f" {query.terms[-1]}" in f" {' '.join(forms)}"
