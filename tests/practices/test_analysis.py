"""Word forms, concepts and typos in five languages (issue 16's analysis, not yet wired into the
adapters), and the judged query set's own consistency. No database: these run in
milliseconds."""

import json
import random
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from hypothesis import given, settings
from hypothesis import strategies as st

from node.core.text import fold
from practices.search.analysis import (
    LANGUAGES,
    analyse,
    analyse_text,
    analyse_words,
    query_terms,
)
from practices.search.concepts import CONCEPTS, by_facet, concept, expansion, find_concepts
from practices.search.port import FACETS
from practices.search.typos import Corrector, allowed_edits, distance
from practices.vocabulary import InterventionType, PracticeKind, ProcessFocus, Setting
from registry.vocabulary import Area, TargetGroup

ROOT = Path(__file__).parents[2]


def meet(language: str, *words: str) -> bool:
    """Whether every word shares an index form with the first."""
    first = set(analyse(words[0], language))
    return all(first & set(analyse(w, language)) for w in words[1:])


@pytest.mark.parametrize(
    ("language", "forms"),
    [
        ("el", ["φυλακές", "φυλακή", "φυλακής", "φυλακών", "ΦΥΛΑΚΕΣ"]),
        ("el", ["αποφυλακισμένοι", "αποφυλακισμένων", "αποφυλακισμένους"]),
        ("el", ["κρατουμένων", "κρατούμενοι"]),
        ("bg", ["затвори", "затвора", "затворите"]),
        ("bg", ["пробационна", "пробационната", "пробационните"]),
        ("bg", ["дерадикализацията", "дерадикализация"]),
        ("bg", ["гнев", "гнева"]),
        ("pt", ["prisão", "prisões", "prisoes", "PRISAO"]),
        ("pt", ["reclusos", "recluso"]),
        ("pt", ["reinserção", "reinsercao"]),
        ("fr", ["radicalisés", "radicalisées", "radicalisees", "radicalises"]),
        ("fr", ["détenus", "détenues", "detenus"]),
        ("fr", ["aumônier", "aumôniers", "aumonier"]),
        ("en", ["prisoner", "prisoners"]),
        ("en", ["mentor", "mentors", "mentoring"]),
        ("en", ["radicalisation", "radicalization", "radicalised"]),
        ("en", ["counselling", "counseling"]),
    ],
)
def test_the_forms_of_a_word_meet(language: str, forms: list[str]) -> None:
    assert meet(language, *forms), [analyse(f, language) for f in forms]


def test_distinct_words_stay_apart() -> None:
    assert not meet("en", "prison", "prevention")
    assert not meet("fr", "prison", "prévention")
    assert not meet("el", "φυλακή", "φύλαξη")
    assert not meet("bg", "затвор", "завод")


def test_stop_words_are_not_indexed_and_other_languages_are_folded_only() -> None:
    assert analyse("réinsertion des détenus", "fr") == ["reinsert", "detenu"]
    assert analyse("the prison and the probation", "en") == ["prison", "probat"]
    assert analyse("Gefängnis Bewährungshilfe", "de") == ["gefangnis", "bewahrungshilfe"]
    assert analyse("", "en") == []
    assert analyse("O7 EU 2018", "en") == ["o7", "eu", "2018"]


def test_compounds_are_indexed_joined_and_split() -> None:
    assert analyse("de-radicalisation", "en") == ["deradicalis", "de", "radicalis"]
    assert set(query_terms("deradicalisation ").words[0].forms) & set(
        analyse("de-radicalisation", "en")
    )


@settings(max_examples=150, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(list("abcéèçãõ αβγήώ абвгйъ-_'.ΣЖÉ")), max_size=60),
    st.sampled_from([*LANGUAGES, "de"]),
)
def test_every_form_of_analysis_agrees(text: str, language: str) -> None:
    terms = analyse(text, language)
    assert terms == analyse_text(text, language).split()
    assert terms == [form for forms in analyse_words(text, language) for form in forms]
    assert all(term == fold(term) and term.isalnum() for term in terms)


# Pieces of text as records write them: words in each script, capitals, punctuation stuck to
# words, prefixed compounds, dashes alone, stop words, and white space of every kind.
PIECES = [
    *"prison Prison PRISON, détenus détenues (réinsertion) des the φυλακές ΦΥΛΑΚΗΣ затворите"
    " Затвор; reclusos prisões de-radicalisation re-integration co-operation self-help"
    " multi-agency post-release — - -- ... O7 EU 2018 ß İstanbul ǅ".split(),
    *" \n\t\u00a0\u2028\u3000\x1c\x85\r\n",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=40), st.sampled_from([*LANGUAGES, "de"]))
def test_a_text_read_token_by_token_gives_the_terms_its_words_give(
    pieces: list[str], language: str
) -> None:
    """`analyse_text` looks up each token between white space (kept from record to record);
    what it gives is what the text's words give one by one, in order, whatever the white
    space, the case, the punctuation and the compounds, and whatever was analysed before."""
    text = "".join(pieces)
    expected = [form for forms in analyse_words(text, language) for form in forms]
    assert analyse_text(text, language).split() == expected
    assert analyse_text(text, language).split() == expected  # each token now known


def test_a_query_word_matches_its_forms_in_every_language_asked() -> None:
    query = query_terms("Φυλακές")
    assert len(query.words) == 1 and "φυλακ" in query.words[0].forms
    # The same letters are stemmed as each language would: a French and an English reader
    # both find "prisons".
    assert {"prison"} <= query_terms("prisons ").words[0].forms
    only_bulgarian = query_terms("затворите ", ["bg"])
    assert only_bulgarian.words[0].forms == frozenset({"затвор"})


def test_a_query_drops_stop_words_unless_it_has_nothing_else() -> None:
    query = query_terms("réinsertion des détenus ")
    assert [w.typed for w in query.words] == ["reinsertion", "detenus"]
    assert query.dropped == ("des",)
    assert [w.typed for w in query_terms("the ").words] == ["the"]
    assert query_terms("").empty and query_terms("  -- ").empty


def test_the_word_being_typed_is_a_prefix_of_its_stem() -> None:
    typing = query_terms("réaffil")
    assert typing.words[-1].prefix is not None
    assert "reaffili".startswith(typing.words[-1].prefix)
    whole = query_terms("reaffiliation")
    assert whole.words[-1].prefix == "reaffili"
    assert query_terms("reaffiliation ").words[-1].prefix is None
    assert query_terms("prison r").words[-1].prefix is None  # one letter: not yet


def test_query_syntax_never_survives() -> None:
    query = query_terms('title_norm:"prison" OR NEAR(a b) * ^x -y')
    for word in query.words:
        assert all(form.isalnum() for form in word.forms)
        assert word.prefix is None or word.prefix.isalnum()


def test_a_long_query_is_cut_to_twelve_words() -> None:
    assert len(query_terms(" ".join(f"word{i}" for i in range(40))).words) == 12


# --- concepts ---------------------------------------------------------------------------

VOCABULARIES = {
    "kind": PracticeKind,
    "intervention_type": InterventionType,
    "process_focus": ProcessFocus,
    "setting": Setting,
    "target_group": TargetGroup,
    "area": Area,
}


def catalogue(language: str) -> dict[str, str]:
    messages: dict[str, str] = {}
    for path in (ROOT / "node/web/locale" / language / "LC_MESSAGES").glob("*.po"):
        with path.open("rb") as po:
            messages |= {
                m.id: m.string
                for m in read_po(po)
                if isinstance(m.id, str) and isinstance(m.string, str) and m.id and m.string
            }
    return messages


def test_every_code_of_the_vocabularies_is_a_concept_labelled_as_the_web_labels_it() -> None:
    # The web's catalogue is read as data: the domain may not import node.web.
    from node.web.labels import LABELS

    catalogues = {language: catalogue(language) for language in LANGUAGES if language != "en"}
    for vocabulary, codes in VOCABULARIES.items():
        for code in codes:
            if code.value == "other":  # names nothing a query could look for
                continue
            c = concept(vocabulary, code.value)
            english = LABELS[codes][code.value]
            assert c.labels["en"] == english
            for language, messages in catalogues.items():
                assert c.labels[language] == messages[english], (vocabulary, code, language)


def test_every_concept_names_itself_in_every_language() -> None:
    seen = set()
    for c in CONCEPTS:
        assert (c.vocabulary, c.code) not in seen
        seen.add((c.vocabulary, c.code))
        for language, phrases in expansion(c).items():
            assert phrases and all(phrases), (c.code, language)
    assert set(by_facet()) <= set(FACETS)
    assert {c.code for c in by_facet()["setting"]} == {s.value for s in Setting}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("наставничество", {("intervention_type", "mentoring")}),
        ("mentorat", {("intervention_type", "mentoring")}),
        ("μέντορας", {("intervention_type", "mentoring")}),
        ("prisão", {("setting", "prison")}),
        ("реинтеграция", {("process_focus", "rehabilitation_reintegration")}),
        ("програма за изход", {("intervention_type", "exit_programme")}),
        ("desporto nas prisões", {("intervention_type", "sport"), ("setting", "prison")}),
        (
            "εκπαίδευση προσωπικού φυλακών",
            {("intervention_type", "staff_training"), ("setting", "prison")},
        ),
        ("ανταλλαγή πληροφοριών", {("area", "information_sharing")}),
        ("prévention de la récidive", {("term", "recidivism")}),
        ("Faith-based dialogue", {("intervention_type", "faith_based_dialogue")}),
    ],
)
def test_a_query_naming_a_concept_in_any_language_finds_it(
    query: str, expected: set[tuple[str, str]]
) -> None:
    found = {(m.concept.vocabulary, m.concept.code) for m in find_concepts(query_terms(query))}
    assert expected <= found, found


def test_a_concept_takes_the_longest_run_of_words_that_names_it() -> None:
    matches = find_concepts(query_terms("staff training in prison "))
    staff = [m for m in matches if m.concept.code == "staff_training"]
    assert staff and (staff[0].start, staff[0].end) == (0, 2)
    assert not find_concepts(query_terms("Ονήσιμος ARTEMIS "))


# --- typos ------------------------------------------------------------------------------


def test_distance_counts_insertions_deletions_substitutions_and_swaps_as_one() -> None:
    assert distance("disengangement", "disengagement") == 1
    assert distance("prison", "prsion") == 1
    assert distance("prison", "prisons") == 1
    assert distance("prison", "prisom") == 1
    assert distance("kitten", "sitting", 3) == 3
    assert distance("abcdef", "uvwxyz") == 3  # more than the limit: limit + 1


def test_corrections_of_the_judged_sets_typos() -> None:
    words = [
        "disengagement",
        "толерантност",
        "accompagnement",
        "voluntariado",
        "αποφυλακισμενων",
        "επανενταξη",
        "rehabilitation",
        "prison",
        "prise",
    ]
    corrector = Corrector(words)
    assert corrector.correct("disengangement") == "disengagement"
    assert corrector.correct("толерантост") == "толерантност"
    assert corrector.correct("accompagnment") == "accompagnement"
    assert corrector.correct("volutariado") == "voluntariado"
    assert corrector.correct("αποφυλακισμενον") == "αποφυλακισμενων"
    assert corrector.correct("επανενταξι") == "επανενταξη"
    assert corrector.correct("rehabilitaion") == "rehabilitation"
    assert corrector.correct("prison") is None  # known: nothing to correct
    assert corrector.correct("prisn") == "prise"  # prise, prison: one edit each, a tie
    assert corrector.correct("prsn") is None  # four letters: never corrected


def test_two_edits_only_from_nine_letters_and_ties_go_to_the_commoner_word() -> None:
    assert [allowed_edits("a" * n) for n in (4, 5, 8, 9)] == [0, 1, 1, 2]
    corrector = Corrector({"probation": 3, "prevention": 1})
    assert corrector.correct("probatoin") == "probation"  # swap: one edit
    assert corrector.correct("prbtion") is None  # seven letters, two edits away
    assert corrector.correct("prbationn") == "probation"  # nine letters, two edits
    # a stem is given the edits its typed word allows, but two only from seven letters
    stems = Corrector({"disengag": 9, "rehab": 1})
    assert stems.correct("disengang", limit=2) == "disengag"
    assert stems.correct("rehabx", limit=2) == "rehab"
    assert stems.correct("rexabx", limit=2) is None
    tie = Corrector({"mentors": 1, "mentory": 5})
    assert tie.correct("mentorz") == "mentory"
    tie.add("mentors", 10)
    assert tie.correct("mentorz") == "mentors"


def test_a_typo_inside_a_suffix_is_corrected_to_the_stem_it_was_meant_to_begin_with() -> None:
    stems = Corrector({"rehabilit": 3, "disengag": 5, "prison": 9, "accompagn": 2})
    assert stems.correct_stem("rehabilitaion") == "rehabilit"
    assert stems.correct_stem("disengangement") == "disengag"
    assert stems.correct_stem("accompagnment") == "accompagn"
    assert stems.correct_stem("prisn") == "prison"  # five letters: one edit
    assert stems.correct_stem("prison") is None  # known
    assert stems.correct_stem("pris") is None  # four letters: never


def test_symmetric_delete_finds_exactly_what_a_full_scan_finds() -> None:
    rng = random.Random(16)
    vocabulary = {
        "".join(rng.choice("abcdefg") for _ in range(rng.randint(4, 12))): rng.randint(1, 9)
        for _ in range(400)
    }
    corrector = Corrector(vocabulary)
    words = list(vocabulary)
    for _ in range(200):
        word = list(rng.choice(words))
        for _ in range(rng.randint(1, 2)):
            i = rng.randrange(len(word))
            edit = rng.choice("sdi")
            if edit == "s":
                word[i] = rng.choice("abcdefgh")
            elif edit == "d" and len(word) > 1:
                del word[i]
            else:
                word.insert(i, rng.choice("abcdefgh"))
        typed = "".join(word)
        limit = allowed_edits(typed)
        expected = {v for v in vocabulary if distance(typed, v, limit) <= limit}
        if typed in vocabulary:
            expected = {typed}
        assert {w for _, w in corrector.candidates(typed)} == expected, typed


# --- the judged query set ---------------------------------------------------------------


def test_the_judged_set_is_well_formed_against_the_sample() -> None:
    queries = json.loads((ROOT / "tests/practices/relevance/queries.json").read_text())["queries"]
    sample = json.loads((ROOT / "practices/sample_data/practices.json").read_text())
    records = {p["ref"]: p for p in sample["practices"] if p["status"] == "published"}
    assert len(queries) >= 60
    assert len({q["id"] for q in queries}) == len(queries)
    for language in LANGUAGES:
        assert sum(q["language"] == language for q in queries) >= 10, language
    filed = {
        "country": lambda p: [p["country"]],
        "kind": lambda p: [p["kind"]],
        "language": lambda p: [p["language"], *(t["language"] for t in p["translations"])],
    }
    for q in queries:
        assert q["q"].strip() and 1 <= len(q["expect"]) <= 10, q["id"]
        assert len(set(q["expect"])) == len(q["expect"]), q["id"]
        for ref in q["expect"]:
            assert ref in records, (q["id"], ref)
            for facet, values in q["filters"].items():
                assert facet in FACETS
                assert set(filed[facet](records[ref])) & set(values), (q["id"], ref, facet)
    texts = {q["q"] for q in queries}
    assert {"φυλακές", "prisão", "реинтеграция", "disengangement"} <= texts
    english_only = {
        ref for ref, p in records.items() if p["language"] == "en" and not p["translations"]
    }
    assert any(q["language"] == "bg" and set(q["expect"]) <= english_only for q in queries)
