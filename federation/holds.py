"""The review queue: records the personal-data gate kept from the feed.

A version of a record with a gate hit is held instead of published. An editor fixes the text
(the new version is scanned again and supersedes the hold); an administrator may release it as
it is, on a justification kept in the audit log, and the record is then published again.

While a practice is held, the practice database knows it (`practices.mark_held`): only
signed-in users of this node see it. Study-visit reports are for signed-in users anyway.
Editors review the holds of their own organisations' records; administrators review all.
"""

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from federation import repository
from federation.gate import Hit
from federation.models import GateHold
from node.core import audit, outbox
from node.core.auth import Principal
from node.core.db import utcnow
from node.core.errors import Conflict, Forbidden, NotFound
from practices import PRACTICE_CHANGED, STUDY_VISIT_CHANGED, mark_held, organisations_records

# --- the outbox handlers' side (a job's session) -------------------------------------------


def hold(
    session: Session, record_type: str, local_id: uuid.UUID, version: int, hits: list[Hit]
) -> None:
    """Hold this version (once), and supersede the holds of the versions before it."""
    if repository.hold_of(session, record_type, local_id, version) is None:
        described = [
            {"detector": h.detector, "field": h.field, "start": h.start, "end": h.end} for h in hits
        ]
        session.add(
            GateHold(record_type=record_type, record_id=local_id, version=version, hits=described)
        )
    supersede(session, record_type, local_id, below=version)


def is_released(session: Session, record_type: str, local_id: uuid.UUID, version: int) -> bool:
    """Whether an administrator released this version: it is then published as it is."""
    return repository.is_released(session, record_type, local_id, version)


def supersede(
    session: Session, record_type: str, local_id: uuid.UUID, *, below: int | None = None
) -> None:
    """Close the record's open holds (only those of versions below `below`, if given): a newer
    version was published or held, or the record is no longer published."""
    repository.resolve_held(session, record_type, local_id, "superseded", below)
    show_hold(session, record_type, local_id)


def show_hold(session: Session, record_type: str, local_id: uuid.UUID) -> None:
    """Tell the practice database whether the practice is held now (a hold of any version is
    still open): the flag follows the holds, whatever changed them."""
    if record_type == "practice":
        mark_held(session, local_id, repository.is_held(session, record_type, local_id))


# --- the reviewers' side (a request's session) ---------------------------------------------


async def review_queue(session: AsyncSession, by: Principal, status: str) -> Sequence[GateHold]:
    """The holds with this status, oldest first: all of them for administrators, those of
    their organisations' records for editors (a practice whose responsible body, a study
    visit whose organiser, is one of theirs), none for anyone else."""
    if by.role not in ("admin", "editor"):
        raise Forbidden("The review queue is for editors and administrators.")
    rows = await repository.holds(session, status)
    if by.is_admin:
        return rows
    records = {(h.record_type, h.record_id) for h in rows}
    theirs = await organisations_records(session, by.organisation_ids, records)
    return [h for h in rows if (h.record_type, h.record_id) in theirs]


async def release(
    session: AsyncSession, hold_id: int, *, justification: str, by: Principal
) -> GateHold:
    """Release a held record as it is, with the justification in the audit log, and queue it
    to be published again (the feed's handler finds the release and skips the gate)."""
    found = await repository.hold_by_id(session, hold_id)
    if found is None:
        raise NotFound(f"No held record {hold_id}.")
    if found.status != "held":
        raise Conflict(f"This hold is {found.status}, not held.")
    found.status, found.resolved_at = "released", utcnow()
    found.resolved_by, found.justification = by.label, justification
    await session.flush()  # public again as it is, before the feed catches up
    record_type, record_id = found.record_type, found.record_id
    await session.run_sync(lambda sync: show_hold(sync, record_type, record_id))
    audit.record(
        session,
        by,
        action="release",
        entity_type=found.record_type,
        entity_id=found.record_id,
        detail={"version": found.version, "hold": found.id, "justification": justification},
    )
    topic = PRACTICE_CHANGED if found.record_type == "practice" else STUDY_VISIT_CHANGED
    outbox.enqueue(session, topic, found.record_id)
    await session.flush()
    return found
