"""Retention (issue 17, item 1): each kind of personal data is removed once kept past the period
the configuration gives it, exactly that and nothing else, as the clock (injected, not slept)
moves forward; each run audited in counts by kind."""

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from node.core.auth import system_principal
from node.core.db import utcnow
from node.core.models import ApiToken, AuditEntry, User
from node.core.settings import Settings
from node.privacy import service
from practices.study_visits.models import StudyVisit, StudyVisitComment
from registry.models import ContactPoint, Organisation

pytestmark = pytest.mark.anyio


def test_the_retention_periods_come_from_the_configuration_file(tmp_path: Path) -> None:
    (tmp_path / "integra.toml").write_text(
        'retention_expired_tokens = "P30D"\nretention_audit_entries = "P0D"\n'
    )
    settings = Settings(data_dir=tmp_path)
    assert settings.retention_expired_tokens == timedelta(days=30)
    assert settings.retention_audit_entries == timedelta(0)  # kept for ever
    assert Settings(data_dir=tmp_path / "none").retention_disabled_accounts == timedelta(days=365)


PERIODS = {
    "retention_audit_entries": timedelta(days=1000),
    "retention_unverified_contacts": timedelta(days=700),
    "retention_visit_participants": timedelta(days=1500),
    "retention_expired_tokens": timedelta(days=90),
    "retention_disabled_accounts": timedelta(days=365),
}


def plant_ages(session: Session, t0: datetime) -> dict[str, Any]:
    """One record of each kind that expires, one that does not, all as of `t0`."""
    org = Organisation(
        name="Org", kind="probation", sector="governmental", level="national", country="PT"
    )
    session.add(org)
    session.flush()
    verified = ContactPoint(
        organisation_id=org.id,
        name="Rui Costa",
        email="r@x.pt",
        last_verified_date=t0.date(),
        updated_at=t0,
    )
    never = ContactPoint(
        organisation_id=org.id, name="Ana Lima", email="a@x.pt", updated_at=t0 - timedelta(days=250)
    )
    session.add_all([verified, never])
    active = User(email="active@x.pt", name="Active", role="editor", updated_at=t0)
    disabled = User(email="gone@x.pt", name="Gone", role="editor", is_active=False, updated_at=t0)
    session.add_all([active, disabled])
    session.flush()
    tokens = {
        "expired": ApiToken(
            user_id=active.id, name="a", token_hash="1" * 64, prefix="a", expires_at=t0
        ),
        "revoked": ApiToken(
            user_id=active.id,
            name="b",
            token_hash="2" * 64,
            prefix="b",
            revoked_at=t0 + timedelta(days=30),
        ),
        "forever": ApiToken(user_id=active.id, name="c", token_hash="3" * 64, prefix="c"),
    }
    session.add_all(tokens.values())
    old_visit = StudyVisit(
        title="Old",
        language="pt",
        host_country="FR",
        start_date=t0.date(),
        end_date=t0.date(),
        purpose="p",
        participant_names=["Rui Costa", "Ana Lima"],
    )
    new_visit = StudyVisit(
        title="New",
        language="pt",
        host_country="FR",
        start_date=t0.date(),
        end_date=(t0 + timedelta(days=400)).date(),
        purpose="p",
        participant_names=["Ana Lima"],
    )
    session.add_all([old_visit, new_visit])
    session.flush()
    comment = StudyVisitComment(
        study_visit_id=old_visit.id,
        author_id=disabled.id,
        author_label="gone@x.pt",
        body="ok",
        action="comment",
        created_at=t0,
    )
    session.add(comment)
    session.add_all(
        [
            AuditEntry(
                at=t0,
                actor="gone@x.pt",
                actor_id=disabled.id,
                action="update",
                entity_type="x",
                entity_id="1",
                detail={},
            ),
            AuditEntry(
                at=t0 + timedelta(days=500),
                actor="active@x.pt",
                action="update",
                entity_type="x",
                entity_id="2",
                detail={},
            ),
        ]
    )
    session.flush()
    return {
        "verified": verified.id,
        "never": never.id,
        "active": active.id,
        "disabled": disabled.id,
        "tokens": {k: t.id for k, t in tokens.items()},
        "old_visit": old_visit.id,
        "new_visit": new_visit.id,
        "comment": comment.id,
    }


async def test_retention_removes_exactly_what_is_past_its_period_as_the_clock_moves(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    settings = settings.model_copy(update=PERIODS)
    t0 = utcnow()  # the retention's own audit entries are written at the real time: day 0
    by = system_principal("test")
    async with sessions() as session:
        ids = await session.run_sync(plant_ages, t0)
        await session.commit()

    async def run(days: int, *, dry_run: bool = False) -> dict[str, int]:
        now = t0 + timedelta(days=days)

        def apply(sync: Session) -> list[Any]:
            return service.retention(sync, settings, now=now, dry_run=dry_run, by=by)

        async with sessions() as session:
            done = await session.run_sync(apply)
            await session.commit()
        return {r.kind: r.count for r in done if r.count}

    async def present() -> dict[str, Any]:
        def read(s: Session) -> dict[str, Any]:
            return {
                "contacts": set(s.scalars(select(ContactPoint.id))),
                "users": set(s.scalars(select(User.id))),
                "tokens": set(s.scalars(select(ApiToken.id))),
                "participants": {
                    i: names
                    for i, names in s.execute(select(StudyVisit.id, StudyVisit.participant_names))
                },
                "audit": [
                    tuple(row)
                    for row in s.execute(
                        select(AuditEntry.actor, AuditEntry.action).order_by(AuditEntry.id)
                    )
                ],
                "comment": s.get(StudyVisitComment, ids["comment"]),
            }

        async with sessions() as session:
            return await session.run_sync(read)

    tokens = ids["tokens"]
    assert await run(10) == {}
    # Day 100: the token that expired on day 0 is past 90 days; the one revoked on day 30 not.
    assert await run(100, dry_run=True) == {"api_token": 1}
    assert (await present())["tokens"] == set(tokens.values())  # a dry run removes nothing
    assert await run(100) == {"api_token": 1}
    state = await present()
    assert state["tokens"] == {tokens["revoked"], tokens["forever"]}
    assert state["audit"][-1] == ("test", "retention")  # counts only: see the detail below
    # Day 500: the revoked token; the never-verified contact point (unchanged since day -250);
    # the account disabled on day 0 (its comment and audit entries keep what, not who).
    assert await run(500) == {"api_token": 1, "contact_point": 1, "user_account": 1}
    state = await present()
    assert state["tokens"] == {tokens["forever"]}
    assert state["contacts"] == {ids["verified"]}
    assert state["users"] == {ids["active"]}
    assert state["comment"].author_label == "[removed]" and state["comment"].author_id is None
    assert ("[removed]", "update") in state["audit"] and ("gone@x.pt", "update") not in state[
        "audit"
    ]
    # Day 1200: the audit entries of day 0 (the planted one and the two retention runs': 1000
    # days), the contact point verified on day 0 (700 days); participants stay (1500 days).
    assert await run(1200) == {"audit_entry": 3, "contact_point": 1}
    state = await present()
    assert state["contacts"] == set()
    assert state["audit"] == [("active@x.pt", "update"), ("test", "retention")]
    assert state["participants"][ids["old_visit"]] == ["Rui Costa", "Ana Lima"]
    # Day 1600: the visit that ended on day 0 loses its participants, the one that ended on day
    # 400 keeps them; the audit entry of day 500 and the last run's go.
    assert await run(1600) == {"study_visit.participant": 2, "audit_entry": 2}
    state = await present()
    assert state["participants"] == {ids["old_visit"]: [], ids["new_visit"]: ["Ana Lima"]}
    assert state["tokens"] == {tokens["forever"]} and state["users"] == {ids["active"]}
    async with sessions() as session:
        entry = await session.scalar(
            select(AuditEntry)
            .where(AuditEntry.action == "retention")
            .order_by(AuditEntry.id.desc())
        )
        assert entry is not None
        assert entry.detail == {"removed": {"audit_entry": 2, "study_visit.participant": 2}}
