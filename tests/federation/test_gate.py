"""The personal-data gate finds what must not travel, and lets the report's own texts through."""

import importlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.canonical import MAX_DEPTH, CanonicalError, canonical, parse_strict
from federation.gate import Gate
from federation.gate.numbers import NATIONAL_IDS
from federation.pool import index_document
from federation.projection import text_fields, text_values
from federation.sync.store import body_bytes, envelope_bytes

PEOPLE = [
    "Eleni Papadopoulou",
    "Ελένη Δοκιμαστική (sample)",
    "Мария Петрова",
    "Γιώργος Παπαδόπουλος",
    "Duty Officer (sample)",
    "Jean Dupont",
]
GATE = Gate.for_people(PEOPLE, home_region="GR")
ROOT = Path(__file__).parents[2]


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Write to liaison@probation.example.org today", "liaison@probation.example.org"),
        ("contact: eleni.p [at] example [dot] org", "eleni.p [at] example [dot] org"),
        ("contact: eleni (at) example (dot) gr", "eleni (at) example (dot) gr"),
        ("Call 210 555 0101 for details", "210 555 0101"),
        ("Appeler le 01 99 00 12 34", "01 99 00 12 34"),
        ("Call +359 2 987 6543", "+359 2 987 6543"),
        ("Ligue 213 456 789", "213 456 789"),
        ("Funds to GR16 0110 1250 0000 0001 2300 695", "GR16 0110 1250 0000 0001 2300 695"),
        ("Η κ. ΔΟΚΙΜΑΣΤΙΚΗ συντονίζει", "ΔΟΚΙΜΑΣΤΙΚΗ"),
        ("η κ. δοκιμαστικη συντονιζει", "δοκιμαστικη"),
        ("με την υποστήριξη του Παπαδόπουλου", "Παπαδόπουλου"),
        ("Петров и колегите", "Петров"),
        ("по Петровата методика", "Петровата"),
        ("екипът на Петровите", "Петровите"),
        ("подходът на Петровия екип", "Петровия"),
        ("Ms Dokimastiki leads the team", "Dokimastiki"),
        ("Dr PAPADOPOULOS", "PAPADOPOULOS"),
        ("Pаpadopoulou (a Cyrillic а inside)", "Pаpadopoulou"),
        ("Eleni Papadopoulou said", "Eleni Papadopoulou"),
        ("M. DUPONT a présenté", "DUPONT"),
    ],
)
def test_personal_data_is_found_where_it_is(text: str, found: str) -> None:
    hits = GATE.scan({"summary": text})
    assert [text[h.start : h.end] for h in hits] == [found]
    assert hits[0].field == "summary" and "characters" in hits[0].reason


def test_hits_name_the_field_path() -> None:
    body = {
        "delegation": [{"profession": "probation officer", "count": 2}],
        "observations": "All fine.",
        "findings": "Ask jean.dupont@example.org.",
    }
    assert [h.field for h in GATE.scan(body)] == ["findings"]


def _documented_identity_numbers() -> list[tuple[str, str]]:
    """The valid examples python-stdnum's own documentation gives for each identifier."""
    examples = []
    for name in NATIONAL_IDS:
        try:
            module = importlib.import_module(f"stdnum.{name}")
        except ImportError:
            continue
        shown = re.findall(r">>> (?:validate|is_valid|compact|format)\('([^']+)'\)", module.__doc__)
        examples += [(name, e.strip()) for e in dict.fromkeys(shown) if module.is_valid(e)]
    return examples


@pytest.mark.parametrize(("module", "number"), _documented_identity_numbers())
def test_identity_numbers_are_found_beside_words_and_other_numbers(
    module: str, number: str
) -> None:
    if re.fullmatch(r"\d{4}\.\d{2}\.\d{3}", number):
        pytest.skip("written like a date (1112.22.333): taken for one")
    for text in (
        f"Her number is {number}.",
        f"le 29 avril 2014 {number} et",
        f"(AMKA {number})",
        f"n° {number}, 22 mesures",
    ):
        hits = Gate().scan({"notes": "Nothing here.", "summary": text})
        found = [text[h.start : h.end] for h in hits if h.field == "summary"]
        assert any(number in f for f in found), (module, text, found)


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("CF: RSSMRA 85T10A562S.", "RSSMRA 85T10A562S"),
        ("CF: RSS MRA 85T10 A562S.", "RSS MRA 85T10 A562S"),
        ("and the codice fiscale RCCMNL83S18D969H of", "RCCMNL83S18D969H"),
    ],
)
def test_a_codice_fiscale_is_found_however_it_is_spaced(text: str, number: str) -> None:
    hits = Gate().scan({"summary": text})
    assert [text[h.start : h.end] for h in hits] == [number]


@pytest.mark.parametrize(
    "text",
    [
        "IBAN ıT60 X054 2811 1010 0000 0123 456 (a dotless i)",
        "Call GR16 0110 1250 0000 0001 2300 695 now",
        "in 2014 DE89370400440532013000 was paid",
        "IBAN FR1420041010050500013M02606 (sample)",
    ],
)
def test_an_iban_followed_by_a_word_is_found(text: str) -> None:
    hits = Gate().scan({"summary": text})
    assert [h.detector for h in hits] == ["a bank account number (IBAN)"]
    assert text[hits[0].start : hits[0].end].split()[-1][-3:].isdigit() or "M02606" in text


def test_dates_and_counts_are_not_identity_numbers() -> None:
    text = (
        "evaluated in 2018. 20 (of 31) completed; 29.04.2014 and 17.03.2007; "
        "2014-2020 then 2021/2027; 72 000 calls"
    )
    assert Gate().scan({"summary": text}) == []


def test_texts_are_scanned_apart_and_hits_placed_in_their_own_field() -> None:
    body = {"title": "Phone 210", "summary": "555 0101", "notes": ["x", "Call 210 555 0101 today"]}
    hits = Gate().scan(body)
    assert [(h.field, h.start, h.end) for h in hits] == [("notes.1", 5, 17)]


def test_roles_are_not_people_and_ordinary_words_are_not_names() -> None:
    text = (
        "The duty officer on call and the sample desk; a Greek official (Ελένη is a first "
        "name only); Petrovgrad; Papadakis; 2015-2020 strategy; Law 53/2008; P.D. 300/2003; "
        "22 measures; started 2018-10-01; report_24-25022016_en.pdf"
    )
    assert GATE.scan({"summary": text}) == []


def test_the_reports_own_practices_and_visits_pass_the_gate() -> None:
    for name, key in (("practices.json", "practices"), ("study_visits.json", "study_visits")):
        records = json.loads((ROOT / "practices/sample_data" / name).read_text())[key]
        for record in records:
            shared = {k: v for k, v in record.items() if k != "participant_names"}
            assert GATE.scan(shared) == [], record["ref"]


def test_study_visit_participants_are_caught_if_they_slip_into_text() -> None:
    records = json.loads((ROOT / "practices/sample_data/study_visits.json").read_text())
    for record in records["study_visits"]:
        gate = Gate.for_people(record["participant_names"])
        name = record["participant_names"][0].replace(" (sample)", "")
        body = {"findings": f"According to {name.upper()}, it works."}
        assert gate.scan(body), name


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_canonical_bytes_parse_back_to_the_same_value(value: object) -> None:
    try:
        data = canonical(value)
    except CanonicalError:
        return  # lone surrogates cannot be encoded: refused, never mangled
    assert parse_strict(data, max_bytes=10**7) == value
    assert canonical(parse_strict(data, max_bytes=10**7)) == data


@pytest.mark.parametrize(
    "data",
    [
        b'{"a":1,"a":2}',
        b'{"a":1.5}',
        b'{"a":NaN}',
        b"[" * 100 + b"]" * 100,
        b"\xff",
        b'{"a":' + b"9" * 30 + b"}",
        b'{"a":{"b":1,"c":[{"d":2,"d":2}]}}',
        b'{"a":' + b"[" * 32 + b"]" * 32 + b"}",
        b'[{"a":-9007199254740992}]',
    ],
)
def test_peers_bytes_that_are_not_plain_json_are_refused(data: bytes) -> None:
    with pytest.raises(CanonicalError):
        parse_strict(data, max_bytes=10_000)


def test_peers_bytes_within_the_limits_are_read() -> None:
    deep = b"[" * 32 + b"]" * 32
    assert parse_strict(deep, max_bytes=1000) == json.loads(deep)
    brackets_in_text = b'{"a":"' + b"[{" * 100 + b'\\"]"}'
    assert parse_strict(brackets_in_text, max_bytes=1000) == {"a": "[{" * 100 + '"]'}
    assert parse_strict(b'{"n":-9007199254740991}', max_bytes=100) == {"n": -(2**53) + 1}


def depth_of(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max(map(depth_of, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth_of, value), default=0)
    return 0


TRICKY = st.text(
    alphabet=st.sampled_from(['"', "\\", "[", "]", "{", "}", "a", "é", "\n", "\u2028"])
)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=MAX_DEPTH - 4, max_value=MAX_DEPTH + 4),
    st.lists(st.tuples(st.booleans(), TRICKY), min_size=MAX_DEPTH + 4, max_size=MAX_DEPTH + 4),
    st.booleans(),
    st.booleans(),
)
def test_the_depth_limit_holds_whatever_brackets_quotes_and_escapes_the_strings_hold(
    levels: int, wrappers: list[tuple[bool, str]], ascii_only: bool, spaced: bool
) -> None:
    """Strings full of brackets, quotes and backslashes (however escaped) never count as
    nesting; the containers do."""
    value: object = "leaf"
    for as_list, text in wrappers[:levels]:
        value = [text, value] if as_list else {text: value, "k": text}
    data = json.dumps(value, ensure_ascii=ascii_only, indent=1 if spaced else None).encode()
    assert depth_of(value) == levels
    if levels > MAX_DEPTH:
        with pytest.raises(CanonicalError, match="nested deeper"):
            parse_strict(data, max_bytes=10**6)
    else:
        assert parse_strict(data, max_bytes=10**6) == value


def test_an_unterminated_string_full_of_escaped_quotes_is_refused_at_once() -> None:
    """Read once, not once per escaped quote: 50,000 of them took minutes when the depth check
    ran before the parser."""
    with pytest.raises(CanonicalError):
        parse_strict(b'"' + b'\\"' * 50_000, max_bytes=10**6)


def test_oversized_input_is_refused_before_parsing() -> None:
    with pytest.raises(CanonicalError, match="larger than"):
        parse_strict(b" " * 101, max_bytes=100)


def test_text_fields_walks_nested_bodies() -> None:
    body = {"a": ["x", {"b": "y"}], "n": 3, "c": {"d": [None, "z"]}}
    assert text_fields(body) == [("a.0", "x"), ("a.1.b", "y"), ("c.d.1", "z")]
    assert text_values(body) == ["x", "y", "z"]


@given(
    st.recursive(
        st.text(max_size=5) | st.integers() | st.booleans() | st.none(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner),
        max_leaves=30,
    )
)
def test_text_values_are_the_texts_of_text_fields_in_their_order(body: Any) -> None:
    """The gate reads `text_values` and reports positions through `text_fields`: the two must
    list the same strings in the same order."""
    assert text_values(body) == [text for _, text in text_fields(body)]


@settings(max_examples=400, deadline=None)
@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
        | st.text(alphabet=st.characters(codec="utf-8")),
        lambda children: (
            st.lists(children, max_size=5)
            | st.dictionaries(st.text(alphabet=st.characters(codec="utf-8")), children, max_size=5)
        ),
        max_leaves=30,
    )
)
def test_canonical_bytes_are_exactly_rfc_8785(value: object) -> None:
    """The fast encoder and the reference implementation agree byte for byte, including
    control characters, astral-plane keys (sorted by UTF-16 code unit) and escapes."""
    assert canonical(value) == rfc8785.dumps(value)


def test_astral_keys_sort_by_utf16_code_units() -> None:
    value = {"\U0001f600": 1, "\uff61": 2, "a\u0007": 3, "b": "\u2028\x7f\x1f"}
    assert canonical(value) == rfc8785.dumps(value)
    assert canonical(value).index("\U0001f600".encode()) < canonical(value).index(b"\xef\xbd\xa1")


def test_a_phone_number_is_reported_as_one_even_where_it_passes_an_identity_check() -> None:
    text = "Athens desk 210 555 0142; Lisbon desk 213 456 789."
    hits = Gate(home_region="GR").scan({"staffing": text})
    assert [(text[h.start : h.end], h.detector) for h in hits] == [
        ("210 555 0142", "a phone number"),
        ("213 456 789", "a phone number"),
    ]


@settings(max_examples=200, deadline=None)
@given(
    body=st.none()
    | st.dictionaries(
        st.text(max_size=6),
        st.text() | st.integers(-(2**53) + 1, 2**53 - 1) | st.lists(st.text(), max_size=3),
        max_size=5,
    ),
    rid=st.text(max_size=12),
    key=st.text(max_size=12),
    sig=st.text(max_size=12),
)
def test_the_hubs_shortcuts_to_canonical_bytes_give_the_canonical_bytes(
    body: object, rid: str, key: str, sig: str
) -> None:
    """The hub slices a body out of its payload's canonical bytes, and writes envelopes and
    relays around bytes it already has: each is exactly what canonicalising would give."""
    payload = {
        "origin": "PT",
        "seq": 7,
        "type": "practice",
        "id": f"PT:{rid}",
        "version": 2,
        "op": "upsert",
        "body": body,
        "time": "2026-11-30T12:00:00Z",
    }
    try:
        signed = canonical(payload)
    except CanonicalError:
        return  # lone surrogates: refused before any of this
    envelope = {"payload": payload, "key": key, "sig": sig}
    assert body_bytes(payload, signed) == canonical(body)
    assert envelope_bytes(envelope, signed) == canonical(envelope)


def test_a_node_with_many_people_finds_each_and_only_them() -> None:
    def letters(n: int) -> str:
        return "".join("abcdefghijklmnopqrstuvwxyz"[n // 26**k % 26] for k in range(3))

    people = [f"Zoe{letters(n)} Kos{letters(n)}ova" for n in range(500)] + PEOPLE
    gate = Gate.for_people(people, home_region="GR")
    surname, whole = f"KOS{letters(417).upper()}OVA", f"zoe{letters(3)} Kos{letters(3)}ov"
    text = f"Visit led by {surname} with {whole}; Kosova, Papadakis and Petrovgrad stay."
    hits = gate.scan({"summary": text})
    assert [text[h.start : h.end] for h in hits] == [surname, whole]


def test_a_start_date_that_is_no_real_day_sorts_as_undated_instead_of_stopping_the_index() -> None:
    from federation.models import FederatedRecord

    def indexed(start: str) -> object:
        body = {"title": "Mentoring", "summary": "Weekly.", "start_date": start}
        envelope = json.dumps({"payload": {"body": body}})
        record = FederatedRecord(
            record_id="PT:x", origin="PT", record_type="practice", envelope=envelope
        )
        return index_document(record).sort_date

    assert indexed("2024-02-30") is None  # the schema's pattern lets it through
    assert str(indexed("2024-02-29")) == "2024-02-29"
