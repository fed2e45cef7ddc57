"""The mails telling a published report's addressees what it recommends to them.

Sent off the request by an outbox job (`RECOMMENDATIONS_PUBLISHED`), so publishing never
fails because the mail server is down. A mail that cannot go is kept `failed` with its error
(shown on the follow-up page and in the API), and the periodic sweep tries it again, up to
`MAX_ATTEMPTS` times; an organisation without a primary contact point with an e-mail address
is marked `no_contact`. The address is looked up when sending and never kept here.
"""

import uuid

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

import registry
from node.core.db import utcnow
from node.core.mail import MailError, send_mail
from node.core.outbox import JobContext, handles, on_sweep
from node.core.settings import Settings
from practices.study_visits.models import RecommendationNotice, StudyVisit
from practices.study_visits.recommendations import RECOMMENDATIONS_PUBLISHED

log = structlog.get_logger()
MAX_ATTEMPTS = 8
NO_SERVER = "no mail server is configured (INTEGRA_SMTP_HOST)"


def compose(visit: StudyVisit, organisation: str, organisation_id: uuid.UUID) -> tuple[str, str]:
    """The subject and the text of the mail to one addressee: the report and the
    recommendations addressed to it."""
    items = [i for i in visit.recommendation_items if organisation_id in i.organisation_ids]
    listed = "\n\n".join(f"{n}. {item.text}" for n, item in enumerate(items, 1))
    subject = f"Recommendations to {organisation}: {visit.title}"
    body = (
        f'The study-visit report "{visit.title}" ({visit.host_country},'
        f" {visit.start_date.isoformat()} to {visit.end_date.isoformat()}) was published on"
        f" Integra Exchange. It addresses these recommendations to {organisation}:\n\n"
        f"{listed}\n\n"
        "Your organisation's editors, or the National Point, can record what becomes of each"
        " one (under consideration, accepted, implemented or declined) on the follow-up page"
        f" of Integra Exchange: /followup/reports/{visit.id}\n"
    )
    return subject, body


def send_notice(session: Session, notice: RecommendationNotice, settings: Settings | None) -> None:
    """Try one notice once; the outcome is written on it (never raised: the next ones go)."""
    visit = session.get(StudyVisit, notice.study_visit_id)
    if visit is None or visit.status != "published":
        notice.state, notice.last_error = "cancelled", "the report is no longer published"
        return
    address = registry.primary_contact_emails(session, [notice.organisation_id]).get(
        notice.organisation_id
    )
    if address is None:
        notice.state, notice.last_error = "no_contact", "no primary contact point with an e-mail"
        return
    notice.attempts += 1
    if settings is None or not settings.smtp_host:
        notice.state, notice.last_error = "failed", NO_SERVER
        return
    names = registry.organisation_labels(session, [notice.organisation_id])
    name = names.get(notice.organisation_id, "your organisation")
    subject, body = compose(visit, name, notice.organisation_id)
    try:
        send_mail(settings, address, subject, body)
    except MailError as error:
        said = f"{type(error).__name__}: {error}".replace(address, "<the contact point>")
        notice.state, notice.last_error = "failed", said[:500]  # the address is not kept
        log.warning(
            "recommendation_mail_failed",
            study_visit=str(visit.id),
            organisation=str(notice.organisation_id),
            attempts=notice.attempts,
            error=notice.last_error,
        )
        return
    notice.state, notice.last_error, notice.sent_at = "sent", None, utcnow()
    log.info("recommendation_mail_sent", study_visit=str(visit.id), attempts=notice.attempts)


def _due(session: Session, *, visit_id: uuid.UUID | None = None) -> list[RecommendationNotice]:
    stmt = (
        select(RecommendationNotice)
        .where(
            RecommendationNotice.state.in_(("pending", "failed")),
            RecommendationNotice.attempts < MAX_ATTEMPTS,
        )
        .order_by(RecommendationNotice.id)
        .limit(100)
    )
    if visit_id is not None:
        stmt = stmt.where(RecommendationNotice.study_visit_id == visit_id)
    if session.get_bind().dialect.name == "postgresql":  # a job and a sweep never both send
        stmt = stmt.with_for_update(skip_locked=True)
    return list(session.scalars(stmt))


@handles(RECOMMENDATIONS_PUBLISHED)
def notify_addressees(session: Session, entity_id: str, context: JobContext) -> None:
    for notice in _due(session, visit_id=uuid.UUID(entity_id)):
        if notice.state == "pending":
            send_notice(session, notice, context.settings)
    session.flush()


@on_sweep
def retry_notices(session: Session, context: JobContext) -> None:
    """Mails that could not go (the server was down, or none configured yet), tried again."""
    for notice in _due(session):
        send_notice(session, notice, context.settings)
    session.flush()
