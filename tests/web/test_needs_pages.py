"""Needs heard in the browser, without a browser (both databases): an editor records a need
for their organisation and marks it addressed, a bad form says what to fix and keeps what was
typed, another organisation's editor cannot touch it, and only the National Point opens the
grouped view. The journey with axe and screenshots is in test_needs_browser.py."""

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.factories import create_organisation, make_user
from tests.web.test_pages import csrf_of, sign_in

pytestmark = pytest.mark.anyio


async def test_an_editor_records_a_need_and_the_national_point_sees_it_grouped(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    admin = await make_user(sessions, "admin", email="np@example.org")
    ours = await create_organisation(client, admin, name="EPANODOS")
    theirs = await create_organisation(client, admin, name="ARSIS")
    await make_user(sessions, "editor", organisations=[ours["id"]], email="ours@example.org")
    await make_user(sessions, "editor", organisations=[theirs["id"]], email="them@example.org")
    assert (await client.get("/needs")).status_code == 303  # signed out: to the sign-in page

    await sign_in(client, "ours@example.org")
    form = (await client.get("/needs")).text
    assert "EPANODOS" in form and "ARSIS" not in form  # their own organisations only
    token = csrf_of(form)
    typed = "Juvenile staff need the RRAP toolset, says Nikos."
    bad: dict[str, Any] = {
        "csrf_token": token,
        "organisation_id": ours["id"],
        "kind": "",
        "description": typed,
        "target_groups": ["juveniles_young_adults"],
    }
    refused = await client.post("/needs", data=bad)
    assert refused.status_code == 422
    assert 'id="problems"' in refused.text and 'href="#f-kind"' in refused.text
    assert typed in refused.text and "No need is recorded yet." in refused.text
    assert (await client.post("/needs", data={**bad, "csrf_token": "0" * 32})).status_code == 403
    made = await client.post("/needs", data={**bad, "kind": "tools"})
    assert made.status_code == 303
    page = (await client.get(made.headers["location"])).text
    assert "The need is recorded." in page and typed in page and "Tools and materials" in page
    need_id = (await client.get("/api/v1/needs", headers=admin)).json()["items"][0]["id"]

    done = await client.post(
        f"/needs/{need_id}/status",
        data={"csrf_token": token, "status": "addressed", "status_note": "ENAP course"},
    )
    assert done.status_code == 303
    assert "Need addressed" in (await client.get("/needs")).text
    assert (await client.get("/needs/summary")).status_code == 403

    await sign_in(client, "them@example.org")
    token = csrf_of((await client.get("/needs")).text)
    other = await client.post(
        f"/needs/{need_id}/status", data={"csrf_token": token, "status": "open"}
    )
    assert other.status_code == 404
    assert typed not in (await client.get("/needs")).text

    await sign_in(client, "np@example.org")
    summary = await client.get("/needs/summary")
    assert summary.status_code == 200
    assert "Tools and materials" in summary.text and "EPANODOS" in summary.text
    assert typed not in summary.text  # counts, not text
    assert "No node shares its needs yet." in (await client.get("/eu/needs")).text
    greek = await client.get("/needs/summary", headers={"Accept-Language": "el"})
    assert "Εργαλεία και υλικό" in greek.text
