"""The hub's schema changes keep what it holds: migration 0008 stores each body once (in its
signed envelope), and going back puts the body column back, filled from the envelopes."""

import json

from alembic import command
from sqlalchemy import create_engine, inspect, text

from node.migrations import alembic_config
from node.settings import sync_url
from tests.conftest import Database
from tests.federation.forgery import rows

LIVE = {"payload": {"op": "upsert", "body": {"title": "Mentoring", "summary": "Weekly."}}}
GONE = {"payload": {"op": "withdraw", "body": None}}


def migrate(db: str, revision: str, *, down: bool = False) -> None:
    engine = create_engine(sync_url(db))
    try:
        with engine.begin() as connection:
            config = alembic_config(db)
            config.attributes["connection"] = connection
            (command.downgrade if down else command.upgrade)(config, revision)
    finally:
        engine.dispose()


def columns(db: str) -> set[str]:
    engine = create_engine(sync_url(db))
    try:
        return {c["name"] for c in inspect(engine).get_columns("federated_record")}
    finally:
        engine.dispose()


def test_the_body_lives_in_the_envelope_and_going_back_restores_the_column(
    database: Database,
) -> None:
    db = database.fresh_copy()  # at head
    assert "body" not in columns(db)
    engine = create_engine(sync_url(db))
    with engine.begin() as conn:
        for rid, withdrawn, envelope in (("PT:a", False, LIVE), ("PT:b", True, GONE)):
            conn.execute(
                text(
                    "INSERT INTO federated_record (record_id, origin, record_type, version,"
                    " withdrawn, body_hash, envelope, origin_seq, received_at, indexed)"
                    " VALUES (:rid, 'PT', 'practice', 1, :w, 'h', :e, 1, '2026-11-30', :w)"
                ),
                {"rid": rid, "w": withdrawn, "e": json.dumps(envelope)},
            )
    engine.dispose()

    migrate(db, "0007", down=True)
    held = {rid: body for rid, body in rows(db, "SELECT record_id, body FROM federated_record")}
    parsed = {
        rid: json.loads(body) if isinstance(body, str) else body for rid, body in held.items()
    }
    assert parsed == {"PT:a": LIVE["payload"]["body"], "PT:b": None}

    migrate(db, "head")
    assert "body" not in columns(db)
    envelopes = dict(rows(db, "SELECT record_id, envelope FROM federated_record"))
    assert json.loads(envelopes["PT:a"]) == LIVE
