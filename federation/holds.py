"""The review queue: records the personal-data gate kept from the feed.

A version of a record with a gate hit is held instead of published. An editor fixes the text
(the new version is scanned again and supersedes the hold); an administrator may release it as
it is, on a justification kept in the audit log, and the record is then published again.

Each finding is kept with the words it found and the text around them, so a reviewer reads
what fired, not character offsets; the words go when they are no longer to be judged (the
hold is superseded by a fixed version, or the record is withdrawn).

While a practice is held, the practice database knows it (`practices.mark_held`): only
signed-in users of this node see it. Study-visit reports are for signed-in users anyway.
Editors review the holds of their own organisations' records; administrators review all.
"""

import re
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from federation import repository
from federation.gate import Hit
from federation.models import GateHold
from federation.projection import text_fields
from node.core import audit, outbox
from node.core.auth import Principal
from node.core.db import utcnow
from node.core.errors import Conflict, Forbidden, NotFound
from practices import PRACTICE_CHANGED, STUDY_VISIT_CHANGED, mark_held, organisations_records

CONTEXT = 40  # characters a reviewer sees on each side of the words found
MAX_WORDS = 200  # characters of the words themselves (a text too long to scan is held whole)
SPACES = re.compile(r"\s")
SAID = ("words", "context")  # what a finding says of the text, forgotten once not needed


def described(body: Any, hits: Sequence[Hit]) -> list[dict[str, Any]]:
    """The gate's hits as a hold keeps them and a publish answers them: the detector, the
    field, the offsets, the words as written and the text around them."""
    texts = dict(text_fields(body))
    return [_described(hit, texts.get(hit.field, "")) for hit in hits]


def _described(hit: Hit, text: str) -> dict[str, Any]:
    low, high = max(0, hit.start - CONTEXT), min(len(text), hit.end + CONTEXT)
    words = _cut(text[hit.start : hit.end])
    context = "".join(
        ("…" if low else "", text[low : hit.start], words, text[hit.end : high]),
    ) + ("…" if high < len(text) else "")
    return {
        "detector": hit.detector,
        "field": hit.field,
        "start": hit.start,
        "end": hit.end,
        "words": words,
        "context": SPACES.sub(" ", context),  # on one line
    }


def _cut(words: str) -> str:
    return words if len(words) <= MAX_WORDS else words[:MAX_WORDS] + "…"


def refused(detector: str, errors: Sequence[Any]) -> list[dict[str, Any]]:
    """A hold's findings for a body the federation schema refuses (pydantic's error details):
    one per field at fault, with the value it refused and why."""
    first: dict[str, Any] = {}
    for error in errors:
        first.setdefault(".".join(str(part) for part in error["loc"]) or "body", error)
    return [
        {
            "detector": detector,
            "field": field,
            "start": 0,
            "end": 0,
            "words": _cut(error["input"]) if isinstance(error.get("input"), str) else "",
            "context": "",
            "reason": str(error["msg"]),
        }
        for field, error in sorted(first.items())
    ]


# --- the outbox handlers' side (a job's session) -------------------------------------------


def hold(
    session: Session,
    record_type: str,
    local_id: uuid.UUID,
    version: int,
    findings: list[dict[str, Any]],
) -> None:
    """Hold this version (once) for its findings (`described`, `refused`), and supersede the
    holds of the versions before it."""
    if repository.hold_of(session, record_type, local_id, version) is None:
        session.add(
            GateHold(record_type=record_type, record_id=local_id, version=version, hits=findings)
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
    forget_words(session, record_type, local_id, withdrawn=below is None)
    show_hold(session, record_type, local_id)


def forget_words(
    session: Session, record_type: str, local_id: uuid.UUID, *, withdrawn: bool
) -> None:
    """Keep the words a finding fired on only while someone may judge them: a superseded hold
    keeps its offsets alone, and so does a released one once the record is withdrawn."""
    gone = ("superseded", "released") if withdrawn else ("superseded",)
    for found in repository.holds_of(session, record_type, local_id):
        if found.status in gone and any(k in h for h in found.hits for k in SAID):
            found.hits = [{k: v for k, v in h.items() if k not in SAID} for h in found.hits]


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
