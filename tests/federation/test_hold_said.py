"""Holds are said, not hidden: a publish, an edit or an import that the personal-data gate holds
answers with the hold (field, words, detector), and the review queue shows the words in their
context; what a publish says is what the feed's job then holds."""

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from federation import keys
from tests.conftest import Database, run_cli
from tests.factories import (
    CONFIRMED,
    Headers,
    create_contact,
    create_organisation,
    make_user,
    practice,
)

pytestmark = pytest.mark.anyio

NAME = "a name of a person this node knows"
EMAIL = "an e-mail address"
LEAK = "Ask Joana Marques for the training materials."


@pytest.fixture
async def admin(client: httpx.AsyncClient, sessions: Any, signing_key: keys.SigningKey) -> Headers:
    """An administrator of a Portuguese node that federates and knows Joana Marques."""
    admin = await make_user(sessions, "admin")
    org = await create_organisation(client, admin, country="PT", name="Probation Lisbon")
    await create_contact(client, admin, org["id"], name="Joana Marques", phones=[])
    return admin


async def publish(client: httpx.AsyncClient, admin: Headers, **fields: Any) -> httpx.Response:
    created = await client.post("/api/v1/practices", json=practice(**fields), headers=admin)
    assert created.status_code == 201, created.text
    return await client.post(
        f"/api/v1/practices/{created.json()['id']}/publish",
        json=CONFIRMED,
        headers=admin | {"If-Match": created.headers["etag"]},
    )


async def queue(client: httpx.AsyncClient, admin: Headers, status: str = "held") -> list[Any]:
    response = await client.get(
        "/api/v1/federation/holds", params={"status": status}, headers=admin
    )
    assert response.status_code == 200, response.text
    return list(response.json())


def said(findings: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {(f["field"], f["words"], f["detector"]) for f in findings}


async def test_a_held_publish_answers_with_what_the_feed_job_then_holds(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    leaky = "Ask Joana Marques (jm@example.pt) for materials."
    published = await publish(client, admin, title="Leaky mentoring", description=leaky)
    assert published.status_code == 200, published.text
    answer = published.json()
    assert answer["status"] == "published" and answer["held"] is True
    assert said(answer["hold"]) == {
        ("description", "Joana Marques", NAME),
        ("description", "jm@example.pt", EMAIL),
    }
    assert {f["context"] for f in answer["hold"]} == {leaky}  # short: the whole text

    [hold] = await queue(client, admin)
    assert hold["record_id"] == answer["id"] and hold["version"] == answer["version"]
    assert said(hold["hits"]) == said(answer["hold"])  # the job held what the publish said
    for hit in hold["hits"]:
        assert leaky[hit["start"] : hit["end"]] == hit["words"] and hit["context"] == leaky

    clean = await publish(client, admin, title="Clean mentoring")
    assert clean.status_code == 200 and clean.json()["hold"] == []
    assert clean.json()["held"] is False
    assert len(await queue(client, admin)) == 1


async def test_the_review_queue_shows_the_words_in_their_context(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    before = "Mentors meet each released person weekly at the probation office; " * 3
    after = " explains the method to new mentors, and the office keeps the records. " * 3
    text = f"{before}Joana Marques{after}"
    published = await publish(client, admin, description=text)
    [finding] = published.json()["hold"]
    [hit] = (await queue(client, admin))[0]["hits"]
    start = text.index("Joana Marques")
    end = start + len("Joana Marques")
    context = "…" + text[start - 40 : start] + "Joana Marques" + text[end : end + 40] + "…"
    assert hit["context"] == finding["context"] == context
    assert (hit["start"], hit["end"], hit["words"]) == (start, end, "Joana Marques")


async def test_a_fix_answers_no_hold_and_the_superseded_hold_forgets_the_words(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    published = await publish(client, admin, description=LEAK)
    assert said(published.json()["hold"]) == {("description", "Joana Marques", NAME)}
    fixed = await client.patch(
        f"/api/v1/practices/{published.json()['id']}",
        json={"description": "Ask the probation office for the training materials."},
        headers=admin | {"If-Match": published.headers["etag"]},
    )
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["hold"] == [] and fixed.json()["held"] is False
    assert await queue(client, admin) == []
    [old] = await queue(client, admin, "superseded")
    assert [(h["field"], h["words"], h["context"]) for h in old["hits"]] == [
        ("description", None, None)  # the offsets stay; the name no longer needs judging
    ]
    assert "Joana" not in json.dumps(old)


async def test_a_held_study_visit_publish_says_the_hold(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    body = {
        "title": "Study visit to Lisbon",
        "language": "en",
        "organising_authority": {"name": "Ministry of Justice"},
        "host_country": "PT",
        "start_date": "2025-09-22",
        "end_date": "2025-09-24",
        "purpose": "Exchange.",
        "delegation": [{"profession": "probation officer", "count": 3}],
        "participant_names": ["Ana Ferreira Sampaio"],
        "findings": "Ms SAMPAIO explained the method.",
    }
    created = await client.post("/api/v1/study-visits", json=body, headers=admin)
    url = f"/api/v1/study-visits/{created.json()['id']}"
    submitted = await client.post(f"{url}/submit", headers=admin | {"If-Match": '"1"'})
    assert submitted.json()["hold"] == []  # a submit publishes nothing
    published = await client.post(
        f"{url}/publish", json=CONFIRMED, headers=admin | {"If-Match": '"2"'}
    )
    assert published.status_code == 200, published.text
    assert said(published.json()["hold"]) == {("findings", "SAMPAIO", NAME)}
    [hold] = await queue(client, admin)
    assert hold["record_type"] == "study_visit"
    assert said(hold["hits"]) == said(published.json()["hold"])
    assert hold["hits"][0]["context"] == "Ms SAMPAIO explained the method."


def test_an_import_says_which_rows_are_held_and_why(database: Database, tmp_path: Path) -> None:
    """`integra practices import` on a node that federates lists each held row with the words
    the gate found, and ends with exit code 3 (the rows are stored, published on the node)."""
    db = database.fresh_copy()
    rows = [
        practice(ref="pt-clean", title="Clean mentoring", country="PT", status="published"),
        practice(
            ref="pt-leaky",
            title="Leaky mentoring",
            country="PT",
            status="published",
            description="Write to joana.m@example.org to join the mentors.",
        ),
        practice(ref="pt-draft", title="Draft", country="PT", description="Call joana.m@ex.org"),
    ]
    file = tmp_path / "practices.json"
    file.write_text(json.dumps({"practices": rows}))
    env = {"INTEGRA_COUNTRY": "PT"}
    args = ("practices", "import", str(file), "--confirm-no-person")
    result = run_cli(*args, database_url=db, data_dir=tmp_path, env=env)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "3 created, 0 updated, 0 unchanged, 0 refused, 1 held" in result.stdout
    said_rows = [line for line in result.stderr.splitlines() if line.startswith("row ")]
    assert said_rows == [
        "row 2 (practice 'pt-leaky'): held from the federation's feed: an e-mail address in "
        "description: 'joana.m@example.org' (Write to joana.m@example.org to join the mentors.)"
    ]
