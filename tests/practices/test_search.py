"""Search over published practices: languages, spelling, prefixes, facets, the outbox."""

from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from node.core import outbox
from node.core.models import OutboxMessage
from tests.factories import CONFIRMED, Headers, make_user, publish_practice, search
from tests.practices.facet_counts import expected_facets, facet_counts, filed_under

pytestmark = pytest.mark.anyio


@pytest.fixture
async def admin(sessions: async_sessionmaker[AsyncSession]) -> Headers:
    return await make_user(sessions, "admin")


def ids(page: dict[str, Any]) -> set[str]:
    return {item["id"] for item in page["items"]}


async def test_published_practices_are_found_and_withdrawn_ones_are_not(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    created = await client.post(
        "/api/v1/practices",
        headers=admin,
        json={
            "kind": "practice",
            "title": "Binômes de soutien",
            "language": "fr",
            "summary": "Un éducateur et un psychologue accompagnent les personnes radicalisées.",
            "licence": "CC-BY-4.0",
            "country": "FR",
        },
    )
    assert created.status_code == 201
    assert ids(await search(client, q="binomes")) == set()  # a draft is not searchable

    published = await client.post(
        f"/api/v1/practices/{created.json()['id']}/publish",
        json=CONFIRMED,
        headers=admin | {"If-Match": '"1"'},
    )
    assert published.status_code == 200
    assert ids(await search(client, q="binomes")) == {created.json()["id"]}

    withdrawn = await client.post(
        f"/api/v1/practices/{created.json()['id']}/withdraw",
        json={"reason": "Ended in 2021"},
        headers=admin | {"If-Match": published.headers["etag"]},
    )
    assert withdrawn.status_code == 200 and withdrawn.json()["withdrawn_reason"] == "Ended in 2021"
    assert ids(await search(client, q="binomes")) == set()


@pytest.mark.parametrize(
    ("language", "text", "queries"),
    [
        (
            "fr",
            "Programme de réinsertion sociale en détention",
            ["reinsertion", "RÉINSERTION", "Réinsertion", "réins", "DETENTION"],
        ),
        (
            "pt",
            "Programa de reinserção e formação profissional nos estabelecimentos prisionais",
            ["reinsercao", "REINSERÇÃO", "formacao", "estabelec"],
        ),
        (
            "bg",
            "Програма за ресоциализация в пробация",
            ["ПРОБАЦИЯ", "пробация", "Пробац", "ресоциализация"],
        ),
        (
            "el",
            "Πρόγραμμα κοινωνικής επανένταξης αποφυλακισμένων",
            ["κοινωνικης", "ΚΟΙΝΩΝΙΚΗΣ", "κοινωνικής", "επανεντ", "ΑΠΟΦΥΛΑΚΙΣΜΈΝΩΝ"],
        ),
        (
            "en",
            "De-radicalisation and disengagement programme for radicalized prisoners",
            [
                "deradicalization",
                "radicalisation",
                "de-radicalization",
                "program",
                "disengag",
                "RADICALIZED prisoners",
            ],
        ),
    ],
)
async def test_accents_case_and_spelling_do_not_matter(
    client: httpx.AsyncClient, admin: Headers, language: str, text: str, queries: list[str]
) -> None:
    made = await publish_practice(client, admin, language=language, title=text, summary=text)
    for query in queries:
        assert made["id"] in ids(await search(client, q=query)), query


async def test_every_query_word_must_match_and_the_title_ranks_first(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    in_title = await publish_practice(
        client,
        admin,
        title="Family support for returnees",
        summary="Work with relatives of returnees.",
    )
    in_body = await publish_practice(
        client, admin, title="Community programme", summary="Includes family support sessions."
    )
    other = await publish_practice(client, admin, title="Sport in prison", summary="Football.")
    page = await search(client, q="family support")
    assert [i["id"] for i in page["items"]][:2] == [in_title["id"], in_body["id"]]
    assert other["id"] not in ids(page)
    assert "<mark>family</mark>" in page["items"][1]["snippet"].lower()


async def test_a_broad_match_is_found_whole_and_ranked_by_its_title_matches(
    client: httpx.AsyncClient, admin: Headers, monkeypatch: pytest.MonkeyPatch
) -> None:
    # More matches than the adapter ranks whole (`RANK_ALL`, 2,000; 2 here): every one is
    # found and counted, those matching in a title ranked first (on PostgreSQL through the
    # titles' own index, migration 0028), the others after them.
    from practices.search import sql

    monkeypatch.setattr(sql, "RANK_ALL", 2)
    body = [
        await publish_practice(
            client, admin, title=f"Community programme {n}", summary="Woodworking sessions."
        )
        for n in range(3)
    ]
    titled = await publish_practice(
        client, admin, title="Woodworking in prison", summary="Weekly sessions."
    )
    other = await publish_practice(client, admin, title="Sport in prison", summary="Football.")
    for q in ("woodworking", "woodw"):  # a word, and a prefix as it is being typed
        page = await search(client, q=q)
        assert page["total"] == 4, q
        assert page["items"][0]["id"] == titled["id"], q
        assert ids(page) == {titled["id"], *(p["id"] for p in body)} and other["id"] not in ids(
            page
        )


async def test_facets_filter_and_or_and_count_like_the_records(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    gr = await publish_practice(client, admin, country="GR", settings=["prison"])
    fr = await publish_practice(client, admin, country="FR", settings=["prison", "probation"])
    pt = await publish_practice(client, admin, country="PT", settings=["community"], kind="tool")

    page = await search(client, country=["GR", "FR"], setting="prison")
    assert ids(page) == {gr["id"], fr["id"]} and page["total"] == 2
    assert ids(await search(client, country="GR", setting="probation")) == set()

    # Every count the API gives equals a count over the records as they were written: other
    # facets' filters applied, the counted facet's own not.
    records = [filed_under(r) for r in (gr, fr, pt)]
    filters = {"country": ["GR", "FR"], "setting": ["prison"]}
    page = await search(client, country=filters["country"], setting=filters["setting"])
    assert facet_counts(page) == expected_facets(records, filters)
    assert {e["value"]: e["count"] for e in page["facets"]["country"]} == {"FR": 1, "GR": 1}


async def test_an_edit_to_a_published_practice_is_searchable_at_once(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    made = await publish_practice(client, admin, title="Old title")
    changed = await client.patch(
        f"/api/v1/practices/{made['id']}",
        json={"title": "Horizon"},
        headers=admin | {"If-Match": f'"{made["version"]}"'},
    )
    assert changed.status_code == 200
    assert ids(await search(client, q="horizon")) == {made["id"]}
    assert ids(await search(client, q="old title")) == set()


async def test_cursor_pages_cover_every_hit_once(client: httpx.AsyncClient, admin: Headers) -> None:
    made = {
        (await publish_practice(client, admin, title=f"Cursor study {i}"))["id"] for i in range(5)
    }
    seen: list[str] = []
    cursor = None
    for sort in ("relevance", "date"):
        seen = []
        cursor = None
        while True:
            params: dict[str, Any] = {"q": "cursor", "limit": 2, "sort": sort}
            if cursor:
                params["cursor"] = cursor
            page = await search(client, **params)
            seen += [i["id"] for i in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert sorted(seen) == sorted(made), sort


async def test_a_crash_after_commit_is_repaired_from_the_outbox(
    client: httpx.AsyncClient,
    admin: Headers,
    sessions: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def crash(*_args: object) -> None:
        raise RuntimeError("process killed between commit and index update")

    monkeypatch.setattr(outbox, "after_commit", crash)
    made = await publish_practice(client, admin, title="Resilient indexing")
    assert ids(await search(client, q="resilient")) == set()
    async with sessions() as session:
        pending = await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.processed_at.is_(None))
        )
    assert pending and pending >= 1

    monkeypatch.undo()
    async with sessions() as session:  # what the next start (or the periodic sweep) does
        await session.run_sync(outbox.drain, client._transport.app.state.jobs)  # type: ignore[attr-defined]
        await session.commit()
    assert ids(await search(client, q="resilient")) == {made["id"]}


text_input = st.text(max_size=300) | st.sampled_from(
    [
        '"',
        "'",
        "(",
        ")",
        "*",
        "NEAR",
        "NEAR(a b)",
        "a AND b",
        "a OR b",
        "NOT x",
        "-x",
        "^x",
        "title_norm:x",
        "{title_norm}: x",
        "\u0301",
        "é",
        "x" * 10_000,
        "\x00",
        "a\x00b",
        "'; DROP TABLE practice; --",
        "%_",
        "\\",
        "ς",
        "ǅ",
    ]
)
filters = st.fixed_dictionaries(
    {},
    optional={
        "country": st.lists(st.sampled_from(["GR", "FR", "gr", "XX", "1", "ÉÉ"]), max_size=3),
        "kind": st.lists(st.sampled_from(["practice", "tool", "nope"]), max_size=2),
        "setting": st.lists(st.sampled_from(["prison", "probation"]), max_size=2),
        "language": st.lists(st.sampled_from(["el", "fr", "zzz"]), max_size=2),
        "sort": st.sampled_from(["relevance", "date", "random"]),
        "limit": st.sampled_from(["1", "20", "0", "1000", "-1", "x"]),
        "cursor": st.text(max_size=40),
    },
)


@pytest.fixture
async def populated(client: httpx.AsyncClient, admin: Headers) -> None:
    for title in ("Réinsertion sociale", "Κοινωνική επανένταξη", "Пробация", "NEAR the exit"):
        await publish_practice(client, admin, title=title)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(q=text_input, params=filters)
async def test_no_input_makes_search_fail(
    client: httpx.AsyncClient, populated: None, q: str, params: dict[str, Any]
) -> None:
    response = await client.get("/api/v1/practices/search", params={"q": q, **params})
    assert response.status_code in (200, 400, 422), (q, params, response.text)


async def test_a_cursor_survives_the_last_hit_of_its_page_being_withdrawn(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    made = [await publish_practice(client, admin, title=f"Stable paging {i}") for i in range(6)]
    first = await search(client, q="stable paging", limit=3)
    last_id = first["items"][-1]["id"]
    last = next(m for m in made if m["id"] == last_id)
    withdrawn = await client.post(
        f"/api/v1/practices/{last_id}/withdraw",
        json={"reason": "x"},
        headers=admin | {"If-Match": f'"{last["version"]}"'},
    )
    assert withdrawn.status_code == 200
    second = await search(client, q="stable paging", limit=3, cursor=first["next_cursor"])
    assert len(second["items"]) == 3
    assert not ids(first) & ids(second)
