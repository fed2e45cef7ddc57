"""A search asked again (the next page, a popular text) answers from what the index holds now."""

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.factories import Headers, make_user, publish_practice, search

pytestmark = pytest.mark.anyio


@pytest.fixture
async def admin(sessions: async_sessionmaker[AsyncSession]) -> Headers:
    return await make_user(sessions, "admin")


async def test_the_same_search_again_sees_what_was_published_and_withdrawn_since(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    first = await publish_practice(client, admin, title="Lighthouse mentoring")
    assert [i["id"] for i in (await search(client, q="lighthouse"))["items"]] == [first["id"]]

    second = await publish_practice(client, admin, title="Lighthouse families")
    again = await search(client, q="lighthouse")
    assert {i["id"] for i in again["items"]} == {first["id"], second["id"]}
    assert again["total"] == 2

    withdrawn = await client.post(
        f"/api/v1/practices/{first['id']}/withdraw",
        json={"reason": "superseded"},
        headers=admin | {"If-Match": f'"{first["version"]}"'},
    )
    assert withdrawn.status_code == 200, withdrawn.text
    last = await search(client, q="lighthouse")
    assert [i["id"] for i in last["items"]] == [second["id"]] and last["total"] == 1


async def test_pages_of_a_repeated_search_follow_the_ranking(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    for n in range(5):
        await publish_practice(client, admin, title=f"Beacon {'beacon ' * n}programme {n}")
    whole = await search(client, q="beacon", limit=5)
    pages, cursor = [], None
    while True:
        page = await search(client, q="beacon", limit=2, **({"cursor": cursor} if cursor else {}))
        pages += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == [i["id"] for i in whole["items"]] and len(pages) == 5
