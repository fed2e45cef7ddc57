"""Snippets: the excerpt around the first match, read only as far as it needs."""

import html
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from practices.search.text import SNIPPET_REACH, QueryTerms, matches, query_terms, snippet


def whole_text_snippet(text: str, query: QueryTerms, words: int = 30) -> str:
    """The rule as first written: every word of the text tested, then the excerpt cut."""
    tokens = list(re.finditer(r"\S+", text))
    if not tokens:
        return ""
    hits = [i for i, m in enumerate(tokens) if query.terms and matches(m.group(), query)]
    start = max(0, hits[0] - words // 3) if hits else 0
    out = [
        f"<mark>{html.escape(t.group())}</mark>" if start + i in hits else html.escape(t.group())
        for i, t in enumerate(tokens[start : start + words])
    ]
    prefix = "… " if start > 0 else ""
    suffix = " …" if start + words < len(tokens) else ""
    return prefix + " ".join(out) + suffix


WORDS = [
    "prison",
    "Prison,",
    "de-radicalisation",
    "radicalization",
    "programme",
    "(program)",
    "réinsertion",
    "ΕΠΑΝΕΝΤΑΞΗ",
    "family",
    "<b>&amp;",
    "self-help",
    "the",
    "x",
]
QUERIES = ["prison", "radicalisation", "program", "fam", "pri fam", "de-rad", "", "réinsertion"]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(WORDS), max_size=90).map(" ".join),
    st.sampled_from(QUERIES),
    st.sampled_from([1, 2, 3, 10, 30]),
)
def test_a_snippet_is_the_whole_text_rule_within_its_reach(text: str, q: str, words: int) -> None:
    terms = query_terms(q)
    assert snippet(text, terms, words=words) == whole_text_snippet(text, terms, words)


def test_a_match_deep_in_a_long_text_is_shown_and_one_past_the_reach_is_not() -> None:
    filler = "the programme of the community " * 600  # about 18,600 characters
    found = snippet(filler + "a prison mentoring scheme " + filler, query_terms("prison"))
    assert "<mark>prison</mark>" in found and found.startswith("… ") and found.endswith(" …")

    far = "the programme " * (SNIPPET_REACH // 14 + 10) + "prison"
    assert snippet(far, query_terms("prison")) == snippet(far, query_terms("absent"))
    assert not snippet(far, query_terms("prison")).startswith("…")
