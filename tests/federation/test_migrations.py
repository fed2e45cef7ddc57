"""The hub's schema changes keep what it holds: migration 0008 stores each body once (in its
signed envelope), and going back puts the body column back, filled from the envelopes; 0009
keeps a relayed record's envelope once (in the hub's relay entry), and going back copies it
into the record again."""

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import create_engine, inspect, text

from federation.canonical import canonical
from federation.models import relayed_envelope
from node.core.settings import sync_url
from tests.conftest import Database, migrate
from tests.federation.forgery import rows

LIVE = {"payload": {"op": "upsert", "body": {"title": "Mentoring", "summary": "Weekly."}}}
GONE = {"payload": {"op": "withdraw", "body": None}}


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


# Keys and texts that would fool a careless cut: the relay's own keys inside the envelope.
TRICKY = {
    "key": "ed25519:abc",
    "payload": {
        "body": {"title": 'He said ,"id":"x" and left', "id": "PT:z", "envelope": {}},
        "id": "PT:a",
        "op": "upsert",
    },
    "sig": "c2ln",
}


def relay_payload(envelope: dict[str, Any], seq: int) -> str:
    """A hub's relay entry as `feed.relay_many` writes it (the canonical payload)."""
    rest = {
        "id": "PT:a",
        "op": "upsert",
        "origin": "EU",
        "seq": seq,
        "time": "2026-11-30T00:00:00Z",
    }
    return canonical({"envelope": envelope, **rest, "type": "practice", "version": 1}).decode()


@given(
    body=st.recursive(
        st.text() | st.integers(-(2**53) + 1, 2**53 - 1) | st.booleans() | st.none(),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
        max_leaves=12,
    )
)
def test_the_envelope_is_cut_out_of_its_relay_entry_byte_for_byte(body: Any) -> None:
    envelope = {"key": "k", "payload": {"body": body, "id": "PT:a"}, "sig": "s"}
    assert relayed_envelope(relay_payload(envelope, 7)) == canonical(envelope).decode()


def test_a_relayed_record_keeps_its_envelope_once_and_going_back_copies_it_in(
    database: Database,
) -> None:
    """0009: a hub's record points at the relay entry holding its envelope; going back to 0008
    puts the envelope, exactly as signed, in the record again."""
    db = database.fresh_copy()  # at head
    payload = relay_payload(TRICKY, 1)
    engine = create_engine(sync_url(db))
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO feed_entry (seq, record_type, record_id, version, op, payload,"
                " body_hash, key_id, signature, created_at)"
                " VALUES (1, 'practice', 'PT:a', 1, 'upsert', :p, 'h', 'k', 's', '2026-11-30')"
            ),
            {"p": payload},
        )
        for rid, envelope, relay_seq in (("PT:a", None, 1), ("PT:m", json.dumps(LIVE), None)):
            conn.execute(
                text(
                    "INSERT INTO federated_record (record_id, origin, record_type, version,"
                    " withdrawn, body_hash, envelope, relay_seq, origin_seq, received_at,"
                    " indexed) VALUES (:rid, 'PT', 'practice', 1, false, 'h', :e, :s, 1,"
                    " '2026-11-30', true)"
                ),
                {"rid": rid, "e": envelope, "s": relay_seq},
            )
    engine.dispose()

    migrate(db, "0008", down=True)
    assert "relay_seq" not in columns(db)
    envelopes = dict(rows(db, "SELECT record_id, envelope FROM federated_record"))
    assert envelopes == {"PT:a": canonical(TRICKY).decode(), "PT:m": json.dumps(LIVE)}

    migrate(db, "head")
    assert "relay_seq" in columns(db)
    assert dict(rows(db, "SELECT record_id, envelope FROM federated_record")) == envelopes
