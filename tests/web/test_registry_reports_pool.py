"""The directory, protocols, exports, study-visit reports and the EU pool's record page,
without a browser, on both databases."""

import json
import re
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from federation import keys
from federation.canonical import canonical
from federation.feed import body_digest
from federation.models import PEER_HUB, FederatedRecord, Peer, PeerKey
from tests.factories import CONFIRMED, create_organisation, make_user
from tests.web.test_pages import sign_in

pytestmark = pytest.mark.anyio


@pytest.fixture
async def registry(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> dict[str, Any]:
    admin = await make_user(sessions, "admin")
    probation = await create_organisation(client, admin, name="Attica Probation Service")
    ngo = await create_organisation(
        client,
        admin,
        name="Epanodos Reintegration Centre",
        kind="ngo",
        sector="ngo",
        level="national",
        areas=["after_care"],
        target_groups=["released_prisoners"],
    )
    protocol = await client.post(
        "/api/v1/protocols",
        json={
            "title": "Attica after-care protocol",
            "country": "GR",
            "status": "in_force",
            "meeting_frequency": "quarterly",
            "parties": [
                {"organisation_id": probation["id"], "role": "lead"},
                {
                    "organisation_id": ngo["id"],
                    "role": "party",
                    "responsibilities": "Housing and work after release.",
                },
            ],
        },
        headers=admin,
    )
    assert protocol.status_code == 201, protocol.text
    return {"admin": admin, "probation": probation, "ngo": ngo, "protocol": protocol.json()}


async def test_the_directory_filters_like_the_api_and_pages_by_keyset(
    client: httpx.AsyncClient, registry: dict[str, Any]
) -> None:
    everything = await client.get("/organisations", headers={"Accept-Language": "fr"})
    assert everything.status_code == 200
    assert "Attica Probation Service" in everything.text
    assert "Epanodos Reintegration Centre" in everything.text
    assert "Service de probation" in everything.text  # the kind's label, in French

    ngos = await client.get(
        "/organisations", params={"kind": "ngo", "area": "after_care", "level": "not-a-level"}
    )
    assert "Epanodos Reintegration Centre" in ngos.text
    assert "Attica Probation Service" not in ngos.text
    assert '<option value="ngo" selected>' in ngos.text
    by_words = await client.get("/organisations", params={"q": "epanodos"})
    assert "Epanodos" in by_words.text and "Attica Probation" not in by_words.text

    for n in range(25):
        await create_organisation(client, registry["admin"], name=f"Zeta unit {n:02d}")
    first = await client.get("/organisations")
    assert "Zeta unit 22" in first.text and "Zeta unit 23" not in first.text
    found = re.search(r'href="(/organisations\?cursor=[^"]+)" rel="next"', first.text)
    assert found, "no next page"
    second = await client.get(found.group(1).replace("&amp;", "&"))
    assert "Zeta unit 23" in second.text and "Zeta unit 24" in second.text
    assert "Zeta unit 22" not in second.text


async def test_a_protocol_shows_its_parties_and_roles_and_organisations_link_it(
    client: httpx.AsyncClient, registry: dict[str, Any]
) -> None:
    protocol = registry["protocol"]
    page = await client.get(f"/protocols/{protocol['id']}", headers={"Accept-Language": "el"})
    assert page.status_code == 200
    assert "Attica after-care protocol" in page.text
    assert f'href="/organisations/{registry["ngo"]["id"]}"' in page.text
    assert "Housing and work after release." in page.text
    assert "Σε ισχύ" in page.text  # in force
    organisation = await client.get(f"/organisations/{registry['probation']['id']}")
    assert f'href="/protocols/{protocol["id"]}"' in organisation.text
    assert "(Lead)" in organisation.text
    assert (await client.get("/protocols/nope")).status_code == 404


async def test_the_exports_hold_the_registry_without_contact_points(
    client: httpx.AsyncClient, registry: dict[str, Any]
) -> None:
    csv = await client.get("/registry/export.csv")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert "Epanodos Reintegration Centre" in csv.text
    document = (await client.get("/registry/export.json")).json()
    assert {o["name"] for o in document["organisations"]} >= {"Attica Probation Service"}
    assert all("contact_points" not in o for o in document["organisations"])
    hsds = await client.get("/registry/export.hsds")
    assert hsds.status_code == 200 and "Epanodos Reintegration Centre" in hsds.text
    assert (await client.get("/registry/export.xml")).status_code == 404


def visit(**overrides: Any) -> dict[str, Any]:
    return {
        "title": "Study visit to the support pairs in Lisbon",
        "language": "en",
        "organising_authority": {"name": "Ministry of Justice"},
        "host_country": "PT",
        "start_date": "2025-05-12",
        "end_date": "2025-05-14",
        "purpose": "Learn how support pairs work with probation services.",
        "delegation": [{"profession": "probation officer", "count": 3}],
        "participant_names": ["Maria Example"],
        "findings": "Pairs of an educator and a psychologist meet weekly.",
        "recommendations": "Pilot support pairs in two prisons.",
        "addressed_to": ["Prison administration"],
    } | overrides


async def test_study_visit_reports_are_for_signed_in_readers_as_in_the_api(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    admin = await make_user(sessions, "admin")
    await make_user(sessions, "practitioner", email="reader@example.org")
    created = await client.post("/api/v1/study-visits", json=visit(), headers=admin)
    url = f"/api/v1/study-visits/{created.json()['id']}"
    await client.post(f"{url}/submit", headers=admin | {"If-Match": '"1"'})
    published = await client.post(
        f"{url}/publish", json=CONFIRMED, headers=admin | {"If-Match": '"2"'}
    )
    assert published.status_code == 200, published.text
    page_url = f"/study-visits/{created.json()['id']}"

    for anonymous in (await client.get("/study-visits"), await client.get(page_url)):
        assert anonymous.status_code == 200 and "sign-in-needed" in anonymous.text
        assert "Study visit to the support pairs" not in anonymous.text
        assert "Maria Example" not in anonymous.text and "/sign-in?" in anonymous.text

    await sign_in(client, "reader@example.org")
    listed = await client.get("/study-visits", params={"host_country": "pt"})
    assert f'href="{page_url}"' in listed.text
    assert page_url not in (await client.get("/study-visits?host_country=FR")).text
    report = await client.get(page_url, headers={"Accept-Language": "pt"})
    assert report.status_code == 200
    assert "Pilot support pairs in two prisons." in report.text
    assert "Prison administration" in report.text and "Maria Example" in report.text
    assert "Recomendações" in report.text
    log = await client.get(
        "/api/v1/audit-log",
        params={"entity_id": created.json()["id"], "actor": "reader@example.org"},
        headers=admin,
    )
    assert [e["action"] for e in log.json()["items"]] == ["read", "read"]  # list, then page


async def pooled_record(
    sessions: async_sessionmaker[AsyncSession], *, tamper: bool = False, erased: bool = False
) -> tuple[str, keys.SigningKey]:
    """A record of the EU pool as a mirror keeps it: PT's signed v2 envelope, its body."""
    key = keys.generate()
    rid = f"PT:{uuid.uuid4()}"
    body = {
        "kind": "practice",
        "title": "Oficinas de reinserção",
        "language": "pt",
        "summary": "Oficinas em grupo depois da libertação.",
        "evaluation": {"type": "outcome_evaluation", "outcomes": []},
        "review_label": "self_reported",
        "licence": "CC-BY-4.0",
        "settings": ["post_release"],
    }
    payload = {
        "v": 2,
        "origin": "PT",
        "seq": 7,
        "type": "practice",
        "id": rid,
        "version": 2,
        "op": "upsert",
        "body_hash": body_digest(body),
        "scope": "public",
        "time": "2026-11-30T10:00:00Z",
    }
    envelope = {"payload": payload, "key": key.key_id, "sig": key.sign(canonical(payload))}
    stored = body | {"title": "Forged title"} if tamper else body
    async with sessions() as session:
        peer = Peer(origin="PT", kind="listed", base_url="")
        session.add(peer)
        await session.flush()
        session.add(PeerKey(key_id=key.key_id, peer_id=peer.id, public_key=key.public_b64))
        session.add(Peer(origin="EU", kind=PEER_HUB, base_url="http://hub.example"))
        session.add(
            FederatedRecord(
                record_id=rid,
                origin="PT",
                record_type="practice",
                version=2,
                body_hash=payload["body_hash"],
                envelope=canonical(envelope).decode(),
                stored_body=None if erased else canonical(stored).decode(),
                redacted='{"by_seq":9,"reason":"personal_data"}' if erased else None,
                origin_seq=7,
            )
        )
        await session.commit()
    return rid, key


async def test_a_pooled_record_shows_who_signed_it_and_whether_it_holds(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    rid, key = await pooled_record(sessions)
    page = await client.get(f"/eu/records/{rid}", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert "Oficinas de reinserção" in page.text and "After release" in page.text
    assert "Shared by the node of Portugal" in page.text
    assert "Signature verified" in page.text
    verify = page.text[page.text.index('id="verify"') :]
    assert "The origin's signature over its entry" in verify and "valid" in verify
    assert key.key_id in verify and "2026-11-30T10:00:00Z" in verify and rid in verify
    assert "matches the hash its origin signed" in verify
    assert json.loads((await client.get(f"/api/v1/eu/records/{rid}")).text)["record_id"] == rid
    assert (await client.get("/eu/records/PT:nothing-here")).status_code == 404
    assert (await client.get("/eu/records/not an id")).status_code == 404


async def test_a_pooled_record_whose_text_was_changed_says_so(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    rid, _key = await pooled_record(sessions, tamper=True)
    page = await client.get(f"/eu/records/{rid}")
    assert "could not all be verified" in page.text
    assert "does not match the hash its origin signed" in page.text


async def test_an_erased_record_still_shows_its_signatures_but_not_its_text(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    rid, key = await pooled_record(sessions, erased=True)
    page = await client.get(f"/eu/records/{rid}")
    assert page.status_code == 200
    assert "Its origin has erased the text of this version." in page.text
    assert "Oficinas" not in page.text and "Signature verified" in page.text
    assert key.key_id in page.text


async def test_a_mirroring_node_offers_eu_wide_search_kept_in_the_url(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    assert 'name="scope"' not in (await client.get("/")).text  # mirrors no hub: no switch
    await pooled_record(sessions)
    local = await client.get("/")
    assert 'id="scope-country" name="scope" value="country" checked' in local.text
    eu = await client.get("/", params={"scope": "eu", "q": "oficinas"})
    assert 'id="scope-eu" name="scope" value="eu" checked' in eu.text
    assert "Search practices" in eu.text
