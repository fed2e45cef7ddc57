"""The index form of a text: the fast whole-text `normalise` is the word-by-word rule."""

from hypothesis import given, settings
from hypothesis import strategies as st

from node.core.text import fold
from practices.search.text import COMPOUND, SPELLINGS, WORD, canonical_word, normalise


def word_by_word(text: str) -> str:
    """The rule as first written: fold, split compounds, then each word's canonical form."""
    folded = COMPOUND.sub(lambda m: f"{m[1]}{m[2]} {m[1]} {m[2]}", fold(text))
    return " ".join(canonical_word(w) for w in WORD.findall(folded))


PIECES = [
    *SPELLINGS,
    *(w.upper() for w in SPELLINGS),
    "de-",
    "co-",
    "re-",
    "counter-",
    "self-",
    "-",
    "_",
    "iz",
    "ize",
    "izes",
    "ization",
    "izational",
    "organ",
    "radical",
    "real",
    "x",
    "Ré",
    "ΔΙΑΧΕΙΡΙΣΗ",
    "Програма",
    "1999",
    " ",
    "  ",
    ".",
    "'",
    "\u0301",
    "ﬁ",
]


@settings(max_examples=600, deadline=None)
@given(st.lists(st.sampled_from(PIECES) | st.text(max_size=6), max_size=30).map("".join))
def test_normalise_is_the_word_by_word_rule(text: str) -> None:
    assert normalise(text) == word_by_word(text)


def test_spellings_compounds_and_scripts_meet() -> None:
    assert (
        normalise("De-radicalisation programmes") == "deradicalisation de radicalisation programs"
    )
    assert normalise("organized ORGANISATIONS behaviour") == "organised organisations behavior"
    assert normalise("Κοινωνική ΕΠΑΝΈΝΤΑΞΗ") == "κοινωνικη επανενταξη"
    assert normalise("size prize") == "size prize"  # three letters before -ize, or it stays
