"""The personal data of needs, for data-subject requests: the free text of a need (its
description and status note) and who recorded it (an account, and the label it was recorded
under). Nothing of it ever travels: the shared counts hold kinds and terms only, so an erasure
changes no shared record. Synchronous (run through `AsyncSession.run_sync`); never commits.
"""

from sqlalchemy import select
from sqlalchemy.orm import Session

from node.core.privacy import REMOVED, Erased, Matcher, Place, scrub_fields, text_places

TEXT = ("description", "status_note")
# What needs hold of a person (the record of processing reads it).
PERSONAL_DATA = {"need": ("description", "status_note", "recorded_by_id", "recorded_by_label")}


def find(session: Session, matcher: Matcher) -> list[Place]:
    """Every need whose text names the person, or that the person recorded."""
    from practices.needs.models import Need

    places: list[Place] = []
    for need in session.scalars(select(Need).order_by(Need.created_at, Need.id)):
        places += text_places(matcher, "need", need.id, {n: getattr(need, n) for n in TEXT})
        if need.recorded_by_id in matcher.user_ids or matcher.spans(need.recorded_by_label):
            value = {"kind": need.kind, "recorded_by": need.recorded_by_label}
            places.append(Place("need.recorder", str(need.id), "recorded_by", value))
    return places


def erase(session: Session, matcher: Matcher) -> Erased:
    """The person's words in needs replaced by `REMOVED`; needs they recorded lose who
    recorded them (the need stays: it is the organisation's)."""
    from practices.needs.models import Need

    erased = Erased()
    for need in session.scalars(select(Need)):
        erased.add("need.text", scrub_fields(matcher, need, TEXT))
        if need.recorded_by_id in matcher.user_ids or matcher.spans(need.recorded_by_label):
            need.recorded_by_id, need.recorded_by_label = None, REMOVED
            erased.add("need.recorder")
    session.flush()
    return erased
