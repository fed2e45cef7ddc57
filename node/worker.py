"""The Celery application: the one entry point of workers and beat (`celery -A node.worker`).

It imports every domain's tasks, so their outbox handlers and Celery tasks are registered, and
unions their schedules with the outbox sweep. Nothing below the composition root imports it.
"""

from typing import Any

from celery import Celery, shared_task
from sqlalchemy.orm import Session

import federation.tasks
import practices.tasks  # noqa: F401 - registers the search handlers
from node.core import outbox
from node.core.db import create_sync_engine
from node.core.settings import Settings, get_settings

celery = Celery("integra")
celery.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    task_time_limit=300,
    task_soft_time_limit=240,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
)


def schedule(settings: Settings) -> dict[str, Any]:
    """The outbox sweep and every domain's periodic tasks."""
    return {
        "outbox-sweep": {
            "task": "integra.outbox.process",
            "schedule": settings.outbox_sweep_interval.total_seconds(),
        },
        **federation.tasks.SCHEDULE,
    }


def configure(settings: Settings) -> Celery:
    celery.conf.update(broker_url=settings.broker_url, beat_schedule=schedule(settings))
    return celery


@shared_task(  # type: ignore[untyped-decorator]
    name="integra.outbox.process",
    autoretry_for=(Exception,),
    retry_backoff=True,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=8,
)
def process_outbox() -> int:
    from practices.search import make_backend

    settings = get_settings()
    engine = create_sync_engine(settings.sqlalchemy_url)
    try:
        with Session(engine) as session:
            context = outbox.JobContext(search=make_backend(settings), settings=settings)
            done = outbox.drain(session, context)
            session.commit()
            return done
    finally:
        engine.dispose()


def _hand_over(settings: Settings) -> None:
    configure(settings)
    process_outbox.delay()


outbox.set_hand_over(_hand_over)

if get_settings().broker_url:  # a worker started with `celery -A node.worker worker`
    configure(get_settings())
