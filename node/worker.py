"""The Celery application: the one entry point of workers and beat (`celery -A node.worker`).

It imports every domain's tasks, so their outbox handlers and Celery tasks are registered, and
unions their schedules with the outbox sweep. Nothing below the composition root imports it.
"""

from typing import Any

from celery import Celery, shared_task
from celery.signals import setup_logging, worker_ready, worker_shutdown
from sqlalchemy.orm import Session

import federation.tasks
import node.core.accounts  # noqa: F401 - its sweeper forgets old sign-in attempts
import practices.tasks  # registers the search handlers
import practices.visit_index  # noqa: F401 - indexes study-visit reports, and its catch-up sweep
from federation.publish import verdicts
from node.core import heartbeat, logs, outbox
from node.core.db import create_sync_engine
from node.core.settings import Settings, get_settings
from node.privacy import tasks as privacy_tasks
from practices.service import set_gate_check

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
            "kwargs": {"sweep": True},  # the domains' sweepers too (the feed's reconciliation)
        },
        **federation.tasks.SCHEDULE,
        **privacy_tasks.schedule(settings),
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
def process_outbox(sweep: bool = False) -> int:
    from practices.search import make_backend

    settings = get_settings()
    engine = create_sync_engine(settings.sqlalchemy_url)
    try:
        with Session(engine) as session:
            context = outbox.JobContext(search=make_backend(settings), settings=settings)
            done = (outbox.sweep if sweep else outbox.drain)(session, context)
            session.commit()
            return done
    finally:
        engine.dispose()


def _hand_over(settings: Settings) -> None:
    configure(settings)
    process_outbox.delay()


outbox.set_hand_over(_hand_over)
# The personal-data gate's verdict, said to whoever publishes (the practice database may not
# import the federation): the same projection and gate as the feed's outbox job.
set_gate_check(verdicts)

_beating: list[heartbeat.Beating] = []


@setup_logging.connect  # type: ignore[untyped-decorator]
def _json_logs(**_: Any) -> None:
    """Celery's messages and the jobs' events as the server's: JSON lines at INTEGRA_LOG_LEVEL
    (connected, this signal keeps Celery from setting up logging of its own)."""
    logs.configure(get_settings().log_level)


@worker_ready.connect  # type: ignore[untyped-decorator]
def _start_beating(**_: Any) -> None:
    """Readiness counts a worker as live while it beats (in a thread: a long job, even on the
    solo pool, does not silence it), and checks that it runs with the node's settings."""
    beating = heartbeat.Beating.of(heartbeat.WORKER, get_settings())
    beating.start()
    _beating.append(beating)


@worker_shutdown.connect  # type: ignore[untyped-decorator]
def _stop_beating(**_: Any) -> None:
    while _beating:
        _beating.pop().stop()


if get_settings().broker_url:  # a worker started with `celery -A node.worker worker`
    configure(get_settings())
