"""Retention applied on a schedule: by Celery beat with a broker (`SCHEDULE`, unioned by
node.worker), else by the node's own periodic sweep, at most once per `retention_interval`
in each process that sweeps. Also registers the erasure's redaction job (node.privacy.shared).
"""

import time
from typing import Any

import structlog
from celery import shared_task
from sqlalchemy.orm import Session

from node.core.auth import system_principal
from node.core.db import create_sync_engine
from node.core.outbox import JobContext, on_sweep
from node.core.settings import Settings, get_settings
from node.privacy import service
from node.privacy import shared as shared  # registers the redaction job

RETENTION_ACTOR = "system:retention"
log = structlog.get_logger()
_last_run: list[float] = []  # monotonic time of this process's last run


def schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    return {
        "privacy-retention": {
            "task": "integra.privacy.retention",
            "schedule": settings.retention_interval.total_seconds(),
        }
    }


def apply_retention(session: Session, settings: Settings) -> dict[str, int]:
    done = service.retention(session, settings, by=system_principal(RETENTION_ACTOR))
    removed = {r.kind: r.count for r in done if r.count}
    if removed:
        log.info("retention_applied", **removed)
    return removed


@on_sweep
def retention_when_due(session: Session, context: JobContext) -> None:
    """Embedded default (no broker): retention in the periodic sweep, once per interval."""
    settings = context.settings
    if settings is None or settings.broker_url:
        return
    now = time.monotonic()
    if _last_run and now - _last_run[-1] < settings.retention_interval.total_seconds():
        return
    _last_run[:] = [now]
    apply_retention(session, settings)


@shared_task(name="integra.privacy.retention")  # type: ignore[untyped-decorator]
def retention_task() -> dict[str, int]:
    settings = get_settings()
    engine = create_sync_engine(settings.sqlalchemy_url)
    try:
        with Session(engine) as session:
            removed = apply_retention(session, settings)
            session.commit()
            return removed
    finally:
        engine.dispose()
