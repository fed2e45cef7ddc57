"""Data protection by design (issue 17, items 1-3): a person planted across every table and text
field of a node (Latin, Greek and Cyrillic spellings, inflected, e-mail and phone) is found in
every place, exported, and erased without a trace (the database searched raw), a shared record
that named them republished without the name at a real hub; retention removes exactly what is
past its period as the clock moves forward; the record of processing says what the node does."""

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import String, Text, create_engine, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session
from sqlalchemy.types import JSON

from node.core.auth import hash_password, hash_token, new_token
from node.core.db import Base, utcnow
from node.core.models import (
    ApiToken,
    AuditEntry,
    PasswordReset,
    SignInAttempt,
    User,
    UserOrganisation,
)
from node.core.settings import Settings, sync_url
from node.core.text import fold
from practices.models import Practice, PracticeOrganisation
from practices.needs.models import Need
from practices.study_visits.models import Recommendation, StudyVisit, StudyVisitComment
from registry.models import ContactPoint, Organisation, Protocol, ProtocolParty
from tests import factories, leaks
from tests.conftest import Database
from tests.federation.test_erasure import hub_process, node_process, whole_feed
from tests.federation.test_sync import cli, wait_for

pytestmark = pytest.mark.anyio

LATIN, GREEK, CYRILLIC = "Maria Papadopoulou", "Μαρία Παπαδοπούλου", "Мария Пападопулу"
EMAIL = "maria.papadopoulou@probation.example.gr"
PHONE = "+30 210 555 0101"
# What must be nowhere once she is erased: stems of every spelling (an index keeps stems),
# the address's local part, the phone's digits as stored and as written.
NEEDLES = (
    "papadopoul",
    "παπαδοπούλ",
    "παπαδοπουλ",
    "Παπαδοπούλ",
    "пападопул",
    "Пападопул",
    "maria.papadopoulou",
    "2105550101",
    "210-555-0101",
    "210 555 0101",
)
CONTROL = "Ivan Petrov"  # another person: untouched by her erasure
WHO = {"names": [GREEK], "emails": [EMAIL], "phones": ["210 555 0101"]}


def plant(session: Session) -> dict[str, Any]:
    """Maria across the node's tables and text fields (and Ivan beside her); returns ids."""
    org = Organisation(
        name="Attica Probation Service",
        kind="probation",
        sector="governmental",
        level="regional",
        country="GR",
        description=f"Founded in 2019 with {GREEK}.",
    )
    session.add(org)
    session.flush()
    maria_contact = ContactPoint(
        organisation_id=org.id,
        name=LATIN,
        title="Liaison officer",
        email=EMAIL,
        phones=[{"number": "+302105550101", "type": "landline"}],
        last_verified_date=date.today(),
    )
    ivan_contact = ContactPoint(
        organisation_id=org.id,
        name=CONTROL,
        title="Probation officer",
        email="ivan.petrov@probation.example.gr",
        phones=[{"number": "+302105550199", "type": "landline"}],
    )
    desk = ContactPoint(
        organisation_id=org.id,
        title="Duty desk",
        email="desk@probation.example.gr",
        hours="Mon-Fri; after 16:00 call 210-555-0101",
    )
    session.add_all([maria_contact, ivan_contact, desk])
    protocol = Protocol(
        title="Attica cooperation protocol",
        country="GR",
        purpose=f"Questions to {EMAIL}.",
    )
    session.add(protocol)
    session.flush()
    session.add(
        ProtocolParty(
            protocol_id=protocol.id,
            organisation_id=org.id,
            role="party",
            responsibilities="г-жа Пападопулу chairs the meetings.",
        )
    )
    maria = User(email=EMAIL, name=LATIN, role="editor", password_hash=hash_password("x" * 12))
    ivan = User(
        email="ivan.petrov@probation.example.gr",
        name=CONTROL,
        role="editor",
        password_hash=hash_password("y" * 12),
    )
    session.add_all([maria, ivan])
    session.flush()
    session.add(UserOrganisation(user_id=maria.id, organisation_id=org.id))
    session.add(
        PasswordReset(
            user_id=maria.id,
            token_hash="9" * 64,
            created_by="np@example.pt",
            expires_at=utcnow() + timedelta(days=1),
        )
    )
    session.add(SignInAttempt(account=EMAIL, address="192.0.2.1"))
    token = new_token()
    session.add(
        ApiToken(user_id=maria.id, name="laptop", token_hash=hash_token(token), prefix=token[:8])
    )
    visit = StudyVisit(
        title="Visit to the Lisbon reintegration team",
        language="el",
        host_country="PT",
        start_date=date(2026, 3, 1),
        end_date=date(2026, 3, 3),
        purpose="Exchange on mentoring after release.",
        observations="Η εισήγηση της Μαρίας Παπαδοπούλου άνοιξε τη συζήτηση.",
        participant_names=[CYRILLIC, CONTROL],
        delegation=[{"profession": "probation officer", "count": 2}],
        author_id=maria.id,
    )
    session.add(visit)
    session.flush()
    session.add(
        Recommendation(
            study_visit_id=visit.id,
            text="Invite the Attica liaison officer to the network.",
            eu_level=True,
            status="under_consideration",
            history=[
                {"status": "received", "date": "2026-04-01", "note": None},
                {
                    "status": "under_consideration",
                    "date": "2026-04-09",
                    "note": f"Discussed with {LATIN} by phone.",
                },
            ],
        )
    )
    session.add_all(
        [
            StudyVisitComment(
                study_visit_id=visit.id,
                author_id=maria.id,
                author_label=EMAIL,
                body="Page 3 is corrected.",
                action="comment",
                created_at=utcnow(),
            ),
            StudyVisitComment(
                study_visit_id=visit.id,
                author_id=ivan.id,
                author_label=ivan.email,
                body="Thanks to Марии Пападопулу for the notes.",
                action="comment",
                created_at=utcnow(),
            ),
        ]
    )
    session.add(
        Need(
            organisation_id=org.id,
            kind="training",
            description=f"Training on risk assessment; {GREEK} has the programme.",
            recorded_by_id=maria.id,
            recorded_by_label=EMAIL,
        )
    )
    draft = Practice(
        kind="practice",
        title="Mentoring circles",
        language="en",
        summary="Volunteers meet released persons weekly.",
        lessons_learned=f"Ask Papadopoulou (phone 210-555-0101) before starting; {CONTROL} leads.",
        licence="CC-BY-4.0",
    )
    session.add(draft)
    session.flush()
    session.add(
        PracticeOrganisation(practice_id=draft.id, name="Papadopoulou Consulting", role="partner")
    )
    session.add_all(
        [
            AuditEntry(
                actor=EMAIL,
                actor_id=maria.id,
                action="update",
                entity_type="practice",
                entity_id=str(draft.id),
                detail={},
            ),
            AuditEntry(
                actor="np@example.pt",
                action="read",
                entity_type="contact_point",
                entity_id=str(maria_contact.id),
                detail={},
            ),
            AuditEntry(
                actor="np@example.pt",
                action="note",
                entity_type="practice",
                entity_id=str(draft.id),
                detail={"note": f"as {LATIN} asked"},
            ),
            AuditEntry(
                actor=ivan.email,
                actor_id=ivan.id,
                action="login",
                entity_type="user",
                entity_id=str(ivan.id),
                detail={},
            ),
        ]
    )
    session.flush()
    return {
        "org": org.id,
        "maria_contact": maria_contact.id,
        "ivan_contact": ivan_contact.id,
        "desk": desk.id,
        "protocol": protocol.id,
        "maria": maria.id,
        "ivan": ivan.id,
        "visit": visit.id,
        "draft": draft.id,
    }


# Where each planted place is reported: (kind, field) pairs `find` must list.
PLANTED = {
    ("user", "(account)"),
    ("api_token", "(token)"),
    ("password_reset", "(reset link)"),
    ("sign_in_attempt", "(attempt)"),
    ("audit_entry", "(entry)"),
    ("contact_point", "(contact point)"),
    ("contact_point", "hours"),
    ("organisation", "description"),
    ("protocol", "purpose"),
    ("protocol_party", "responsibilities"),
    ("practice", "lessons_learned"),
    ("practice_organisation", "name"),
    ("study_visit", "observations"),
    ("study_visit.participant", "participant_names"),
    ("study_visit.author", "author_id"),
    ("study_visit_comment", "(comment)"),
    ("need", "description"),
    ("recommendation", "history"),
    ("need.recorder", "recorded_by"),
}


def text_traces(session: Session) -> list[str]:
    """Every needle in every text column of every table (text, strings, JSON): the database
    searched as SQL sees it, on both backends."""
    found = []
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            if not isinstance(column.type, String | Text | JSON):
                continue
            values = session.execute(select(column).where(column.is_not(None))).scalars()
            for value in values:
                raw = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                hits = [n for n in NEEDLES if n in raw or n in raw.lower() or n in fold(raw)]
                if hits:
                    found.append(f"{table.name}.{column.name}: {hits}")
    return found


async def admin_headers(sessions: async_sessionmaker[AsyncSession]) -> dict[str, str]:
    return await factories.make_user(sessions, "admin", email="np@example.pt")


async def test_find_export_and_erase_every_place_through_the_api(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    admin = await admin_headers(sessions)
    async with sessions() as session:
        ids = await session.run_sync(plant)
        await session.commit()

    found = await client.post(
        "/api/v1/privacy/find", json=WHO | {"request": "DSR-1"}, headers=admin
    )
    assert found.status_code == 200, found.text
    places = found.json()["places"]
    assert PLANTED <= {(p["kind"], p["field"]) for p in places}, places
    # Every spelling was matched, from one Greek name: Latin, Cyrillic, inflected.
    words = {w for p in places for w in p["found"]}
    assert {LATIN, EMAIL, "Μαρίας Παπαδοπούλου", "Пападопулу", "210-555-0101"} <= words, words
    about = [p for p in places if p["kind"] == "audit_entry"]
    assert len(about) == 3  # hers, the read of her contact point, the note naming her
    # Ivan appears nowhere in her answer.
    assert not any(p["id"] in {str(ids["ivan_contact"]), str(ids["ivan"])} for p in places)

    exported = await client.post("/api/v1/privacy/export", json=WHO, headers=admin)
    assert exported.status_code == 200
    data = exported.json()
    assert len(data["places"]) == len(places)
    for needle in (LATIN, EMAIL, "+302105550101", CYRILLIC, "Page 3 is corrected.", "laptop"):
        assert needle in exported.text, needle
    readable = await client.post(
        "/api/v1/privacy/export", params={"format": "markdown"}, json=WHO, headers=admin
    )
    assert readable.headers["content-type"].startswith("text/markdown")
    assert "# Personal data held by this node" in readable.text and EMAIL in readable.text

    erased = await client.post(
        "/api/v1/privacy/erase", json=WHO | {"request": "DSR-1", "confirm": True}, headers=admin
    )
    assert erased.status_code == 200, erased.text
    counts = erased.json()["erased"]
    assert counts["user"] == 1 and counts["contact_point"] == 1
    assert counts["study_visit.participant"] == 1

    async with sessions() as session:
        assert await session.run_sync(text_traces) == []
        # Ivan, his contact point and his participation are untouched.
        visit = await session.get(StudyVisit, ids["visit"])
        assert visit is not None and visit.participant_names == [CONTROL]
        assert visit.author_id is None
        assert await session.get(ContactPoint, ids["ivan_contact"]) is not None
        desk = await session.get(ContactPoint, ids["desk"])
        assert desk is not None and desk.hours == "Mon-Fri; after 16:00 call [removed]"
        draft = await session.get(Practice, ids["draft"])
        assert draft is not None and CONTROL in (draft.lessons_learned or "")
        assert draft.version == 2
        # The audit log says what was done, under the request's reference, never the data.
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "privacy_erase"))
        assert entry is not None and entry.entity_id == "DSR-1"
        assert entry.detail["erased"] == counts
        kept = await session.scalar(
            select(func.count()).where(AuditEntry.actor == "ivan.petrov@probation.example.gr")
        )
        assert kept == 1

    again = await client.post("/api/v1/privacy/find", json=WHO, headers=admin)
    assert again.json()["count"] == 0


async def test_the_privacy_routes_are_for_administrators_and_refuse_bad_requests(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    admin = await admin_headers(sessions)
    editor = await factories.make_user(sessions, "editor")
    assert (await client.post("/api/v1/privacy/find", json=WHO)).status_code == 401
    refused = await client.post("/api/v1/privacy/find", json=WHO, headers=editor)
    assert refused.status_code == 403
    assert (await client.get("/api/v1/privacy/record", headers=editor)).status_code == 403

    async def problem(path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await client.post(path, json=body, headers=admin)
        assert response.status_code == 422, response.text
        return dict(response.json())

    nobody = await problem("/api/v1/privacy/find", {"names": []})
    assert nobody["fields"][0]["field"] == "names"
    short = await problem("/api/v1/privacy/find", {"phones": ["12"]})
    assert short["fields"][0]["field"] == "phones"
    named = await problem(
        "/api/v1/privacy/erase", WHO | {"request": "Papadopoulou-1", "confirm": True}
    )
    assert named["fields"][0]["field"] == "request" and "names the person" in named["detail"]
    await problem("/api/v1/privacy/erase", WHO | {"confirm": True})  # no reference
    await problem("/api/v1/privacy/erase", WHO | {"request": "DSR 2"})  # not confirmed
    bad = await problem("/api/v1/privacy/erase", WHO | {"request": "DSR 2", "confirm": True})
    assert bad["fields"][0]["field"] == "request"
    yourself = {"emails": ["np@example.pt"], "request": "DSR-3", "confirm": True}
    refused = await client.post("/api/v1/privacy/erase", json=yourself, headers=admin)
    assert refused.status_code == 409 and "another administrator" in refused.json()["detail"]


async def test_the_record_of_processing_follows_the_data_model_and_settings(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    admin = await admin_headers(sessions)
    response = await client.get("/api/v1/privacy/record", headers=admin)
    assert response.status_code == 200
    data = response.json()
    names = [a["name"] for a in data["activities"]]
    assert "National Registration Database: contact points" in names
    contacts = data["activities"][0]
    assert "contact_point.email" in contacts["data"] and "contact_point.phones" in contacts["data"]
    assert data["retention"]["api_token"] == f"{settings.retention_expired_tokens.days} days"
    assert (
        "never personal data" in data["recipients_outside_the_node"]["hub"] or not settings.country
    )
    readable = await client.get(
        "/api/v1/privacy/record", params={"format": "markdown"}, headers=admin
    )
    assert readable.text.startswith("# Record of processing activities")
    assert "## Security measures" in readable.text


# --- a real node and hub: the CLI, the shared record, the raw database ------------------------

PT = {"INTEGRA_COUNTRY": "PT"}


def raw_traces(db: str, *, vacuum: bool = True) -> list[str]:
    """Every needle in a database as stored (the bytes of SQLite's files after VACUUM, every
    text column of PostgreSQL), as written, lower-cased and folded."""
    return leaks.raw_traces(db, NEEDLES, fold=fold, vacuum=vacuum)


def plant_in(db: str) -> dict[str, Any]:
    engine = create_engine(sync_url(db))
    try:
        with Session(engine) as session:
            ids = plant(session)
            session.commit()
    finally:
        engine.dispose()
    return ids


def test_a_person_is_found_exported_and_erased_everywhere_and_the_hub_gets_the_record_without_them(
    database: Database, tmp_path: Path
) -> None:
    processes = []
    try:
        node_proc, node = node_process(database, tmp_path)
        processes.append(node_proc)
        hub_proc, hub = hub_process(database, tmp_path, node)
        processes.append(hub_proc)
        admin, url = node["admin"], node["url"]
        ids = plant_in(node["db"])

        # A practice names her; the gate holds it (it knows her), an administrator releases it
        # (the hub, which knows no names, lets it in).
        practice = factories.practice(country="PT", description=f"Designed with {LATIN} in 2021.")
        created = httpx.post(f"{url}/api/v1/practices", json=practice, headers=admin)
        assert created.status_code == 201, created.text
        local_id, rid = created.json()["id"], f"PT:{created.json()['id']}"
        published = httpx.post(
            f"{url}/api/v1/practices/{local_id}/publish",
            json=factories.CONFIRMED,
            headers=admin | {"If-Match": created.headers["etag"]},
        )
        assert published.status_code == 200 and published.json()["hold"], published.text
        [held] = httpx.get(f"{url}/api/v1/federation/holds", headers=admin).json()
        released = httpx.post(
            f"{url}/api/v1/federation/holds/{held['id']}/release",
            json={"justification": f"{LATIN} agreed to be named in this record."},
            headers=admin,
        )
        assert released.status_code == 200, released.text
        other = factories.practice(country="PT", description="Mentors meet weekly.")
        control = httpx.post(f"{url}/api/v1/practices", json=other, headers=admin).json()
        httpx.post(
            f"{url}/api/v1/practices/{control['id']}/publish",
            json=factories.CONFIRMED,
            headers=admin | {"If-Match": f'"{control["version"]}"'},
        ).raise_for_status()
        wait_for("her name at the hub", lambda: "Papadopoulou" in whole_feed(hub["url"])[0])

        who = ["--name", LATIN, "--email", EMAIL, "--phone", PHONE]
        found = json.loads(cli(node["db"], node["data"], "privacy", "find", *who, "--json", env=PT))
        kinds = {(p["kind"], p["field"]) for p in found}
        shared = {("practice", "description"), ("gate_hold", "(hold)"), ("feed_entry", rid)}
        assert PLANTED | shared <= kinds, sorted(PLANTED | shared - kinds)

        cli(
            node["db"],
            node["data"],
            "privacy",
            "export",
            str(tmp_path / "out"),
            *who,
            "--request",
            "DSR-7",
            env=PT,
        )
        exported = json.loads((tmp_path / "out" / "DSR-7.json").read_text())
        assert len(exported["places"]) == len(found)
        readable = (tmp_path / "out" / "DSR-7.md").read_text()
        for needle in (LATIN, GREEK.split()[1], CYRILLIC.split()[1], EMAIL, "+302105550101"):
            assert needle in readable, needle

        assert raw_traces(hub["db"], vacuum=False)  # she is at the hub: the search finds her
        erased = cli(
            node["db"],
            node["data"],
            "privacy",
            "erase",
            *who,
            "--request",
            "DSR-7",
            "--yes",
            env=PT,
        )
        assert f"practice:{local_id}" in erased and "request DSR-7: erased" in erased

        def republished() -> list[dict[str, Any]] | None:
            entries = [e for e in whole_feed(hub["url"])[1] if e["payload"]["id"] == rid]
            return entries if entries[-1]["payload"]["op"] == "redact" else None

        entries = wait_for("the redaction and the new version at the hub", republished)
        [redaction] = [
            e["payload"]["redact"]
            for e in whole_feed(url)[1]
            if e["payload"]["id"] == rid and e["payload"]["op"] == "redact"
        ]
        assert redaction["reason"] == "erasure_request"
        [new] = [e for e in entries if e["payload"]["op"] == "upsert" and e.get("body")]
        assert "[removed]" in new["body"]["description"]
        assert new["payload"]["version"] > max(redaction["versions"])
        raw = whole_feed(hub["url"])[0]
        assert not [n for n in NEEDLES if n in raw or n in raw.lower()], raw

        if database.backend == "sqlite":  # the commands once; their services on both (above)
            shown = cli(node["db"], node["data"], "privacy", "retention", "--dry-run", env=PT)
            assert "would remove" in shown and "Audit log entries" in shown
            ropa = json.loads(cli(node["db"], node["data"], "privacy", "record", "--json", env=PT))
            assert "never personal data" in ropa["recipients_outside_the_node"]["hub"]

        assert not raw_traces(hub["db"], vacuum=False), raw_traces(hub["db"], vacuum=False)
        # The other record and Ivan are where they were.
        assert "Mentors meet weekly." in whole_feed(hub["url"])[0]
        node_proc.terminate()
        node_proc.wait(timeout=30)
        processes.remove(node_proc)
        assert not raw_traces(node["db"])
        engine = create_engine(sync_url(node["db"]))
        with Session(engine) as session:
            ivan = session.get(ContactPoint, ids["ivan_contact"])
            assert ivan is not None and ivan.name == CONTROL
            [entry] = session.scalars(
                select(AuditEntry).where(AuditEntry.action == "privacy_erase")
            ).all()
            assert entry.entity_id == "DSR-7" and entry.actor.startswith("cli:")
        engine.dispose()
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)
