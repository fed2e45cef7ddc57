"""Work that fails every attempt is kept as failed, with its error: no sweep takes it up again,
readiness can count it, `integra jobs list` and `integra feed status` show it, and
`integra jobs retry` runs it again. Nothing is dropped."""

import json
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

import node.worker  # noqa: F401 - every domain's outbox handlers, as a node has them
from federation import trust
from node.core import outbox
from node.core.auth import system_principal
from node.core.db import create_engine, create_sync_engine, session_factory
from node.core.settings import Settings, async_url
from practices.search import make_backend
from tests import factories
from tests.conftest import Database, run_cli

pytestmark = pytest.mark.anyio


async def failed_count(url: str) -> int:
    engine = create_engine(async_url(url), pooled=False)
    try:
        async with session_factory(engine)() as session:
            return await outbox.failed_count(session)
    finally:
        await engine.dispose()


async def _signing_key(settings: Settings) -> None:
    engine = create_engine(async_url(settings.sqlalchemy_url), pooled=False)
    try:
        async with session_factory(engine)() as session:
            await trust.create_signing_key(session, settings, by=system_principal("test"))
            await session.commit()
    finally:
        await engine.dispose()


def sweep_outbox(settings: Settings, times: int) -> list[int]:
    """Passes of the outbox, as the node's sweeps make them: how many messages each tried."""
    engine = create_sync_engine(settings.sqlalchemy_url)
    context = outbox.JobContext(search=make_backend(settings), settings=settings)
    tried = []
    try:
        for _ in range(times):
            with Session(engine) as session:
                tried.append(outbox.process_pending(session, context))
                session.commit()
    finally:
        engine.dispose()
    return tried


async def test_a_job_that_fails_every_attempt_stays_failed_until_retried(
    database: Database, tmp_path: Path
) -> None:
    db, data, env = database.fresh_copy(), tmp_path / "pt", {"INTEGRA_COUNTRY": "PT"}
    settings = Settings(database_url=db, data_dir=data, country="PT")

    def cli(*args: str, code: int = 0) -> str:
        result = run_cli(*args, database_url=db, data_dir=data, env=env)
        assert result.returncode == code, result.stdout + result.stderr
        return result.stdout + result.stderr

    await _signing_key(settings)  # as `integra keys init` (tests/node/test_cli.py runs it)
    [key_file] = (data / "keys").iterdir()
    away = key_file.rename(tmp_path / "key.pem")  # the keys directory was not restored
    rows = [factories.practice(country="PT", status="published", ref="pt-failing")]
    (tmp_path / "practices.json").write_text(json.dumps({"practices": rows}))
    cli("practices", "import", str(tmp_path / "practices.json"), "--confirm-no-person")

    # The import's own attempt was the first; given up after the last, no sweep takes it again...
    assert sweep_outbox(settings, outbox.MAX_ATTEMPTS) == [1] * (outbox.MAX_ATTEMPTS - 1) + [0]
    assert await failed_count(db) == 1  # ...and it is not dropped

    [listed] = cli("jobs", "list").splitlines()
    job = listed.split()[0]
    assert f"{job} failed practice.changed" in listed and "FileNotFoundError" in listed
    status = json.loads(cli("feed", "status", "--json"))
    [record] = status["records"]
    assert record["reason"] == "failed" and record["job"] == int(job)
    assert "FileNotFoundError" in record["detail"]
    assert [j["id"] for j in status["failed_jobs"]] == [int(job)]

    assert "error: no job 999999" in cli("jobs", "retry", "999999", code=1)
    away.rename(key_file)
    assert "retried 1 failed jobs: 1 done" in cli("jobs", "retry")
    assert await failed_count(db) == 0
    status = json.loads(cli("feed", "status", "--json"))
    assert status["in_step"] and status["failed_jobs"] == [] and status["waiting_jobs"] == 0
    assert f"error: job {job} is done, not failed" in cli("jobs", "retry", job, code=1)
