"""The Meilisearch adapter. Its server cannot run here: the integration test runs only when
MEILI_URL names one, and says so when skipped. The query it builds is checked without one."""

import os
import uuid
from datetime import date

import pytest

from practices.search.meili import (
    MeiliSearch,
    concept_synonyms,
    document,
    filter_expression,
    search_requests,
)
from practices.search.port import IndexDocument, SearchQuery

MEILI_URL = os.environ.get("MEILI_URL")


def test_filters_are_quoted_values_in_and_across_or_within() -> None:
    clauses = filter_expression(
        {"country": frozenset({"GR", "FR"}), "kind": frozenset({'tool" OR 1=1'})}
    )
    assert clauses == ['country IN ["FR", "GR"]', 'kind IN ["tool\\" OR 1=1"]']
    assert filter_expression({"country": frozenset({"GR"})}, skip="country") == []


def test_a_query_asks_once_per_filtered_facet_for_disjunctive_counts() -> None:
    query = SearchQuery(text="Réinsertion soc", filters={"country": frozenset({"FR"})})
    main, country = search_requests(query, offset=0)
    # the words as index forms (stems) in the reader's language, English when none is given
    assert main["q"] == "reinsert soc" and main["filter"] == ['country IN ["FR"]']
    assert main["matchingStrategy"] == "all"
    assert country["facets"] == ["country"] and country["filter"] == [] and country["limit"] == 0


def test_documents_carry_the_same_normalised_text_as_the_sql_index() -> None:
    doc = document(
        IndexDocument(
            uuid.uuid4(),
            "De-radicalisation",
            "De-radicalisation",
            "Programme",
            date(2020, 1, 1),
            {"country": ["SE"]},
        )
    )
    assert "deradicalisation" in doc["title_norm"] and doc["body_norm"] == "program"
    assert doc["country"] == ["SE"] and doc["sort_date"] == date(2020, 1, 1).toordinal()
    analysed = document(
        IndexDocument(
            uuid.uuid4(),
            "Φυλακές",
            "Φυλακές",
            "",
            None,
            {},
            texts=(("el", "Φυλακές", "κρατουμένων"),),
        )
    )
    assert analysed["title_norm"] == "φυλακ" and analysed["body_norm"] == "κρατουμεν"
    greek = search_requests(SearchQuery(text="φυλακή ", languages=("el",)), offset=0)[0]
    assert greek["q"] == "φυλακ "


def test_concept_names_are_synonyms_across_languages() -> None:
    synonyms = concept_synonyms()
    assert "затвор" in synonyms["prison"] and "prison" in synonyms["затвор"]


@pytest.mark.skipif(
    not MEILI_URL,
    reason="MEILI_URL is not set: no Meilisearch server here, "
    "so the adapter's integration test did not run",
)
@pytest.mark.anyio
async def test_against_a_real_meilisearch() -> None:
    backend = MeiliSearch(MEILI_URL or "", os.environ.get("MEILI_MASTER_KEY"))
    first = IndexDocument(
        uuid.uuid4(),
        "Κοινωνική επανένταξη",
        "Κοινωνική επανένταξη",
        "Πρόγραμμα",
        date(2021, 1, 1),
        {"country": ["GR"], "kind": ["practice"]},
    )
    second = IndexDocument(
        uuid.uuid4(),
        "Réinsertion",
        "Réinsertion",
        "Programme",
        date(2022, 1, 1),
        {"country": ["FR"], "kind": ["tool"]},
    )
    backend.clear(None)  # type: ignore[arg-type]
    backend.upsert(None, [first, second])  # type: ignore[arg-type]
    found = await backend.search(None, SearchQuery(text="ΚΟΙΝΩΝΙΚΗ"))  # type: ignore[arg-type]
    assert found.record_ids == [first.record_id]
    faceted = await backend.search(
        None,
        SearchQuery(  # type: ignore[arg-type]
            filters={"country": frozenset({"FR"})}
        ),
    )
    assert faceted.record_ids == [second.record_id]
    assert faceted.facets["country"] == {"FR": 1, "GR": 1}
    backend.remove(None, [second.record_id])  # type: ignore[arg-type]
    assert (await backend.search(None, SearchQuery(text="reinsertion"))).total == 0  # type: ignore[arg-type]
