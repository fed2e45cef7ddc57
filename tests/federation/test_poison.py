"""Poison-proof ingestion: a rogue peer's entry that no database, index or page of the
federation should hold (a NUL, a 200-character id, a version past 2**31, a lone surrogate,
terminal escapes, a bidi override, a `javascript:` link, markup, a term nobody defined, a
record filed under another country) is refused alone with its reason. The rest of the feed is
applied, the search index and a mirror receive everything else, the peer's Merkle frontier
stays right for its later entries, and the state equals that of a hub that never saw the
poison."""

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from federation.merkle import leaf_hash, root
from federation.models import FederatedRecord
from federation.pool import index_pending, search_id, terms
from federation.projection import SharedPractice
from node.core.settings import Settings, sync_url
from practices.search import make_backend
from tests.conftest import Database
from tests.federation.forgery import (
    BODY,
    NOW,
    Peer,
    due_now,
    enrolled_hub,
    held_records,
    hub_cli,
    rows,
)
from tests.federation.test_crash import env_hub, searchable, state_digest
from tests.federation.test_refusals import listed

# What a node may send, and what the hub must hold as if nothing else had come.
GOOD = {
    "a": BODY,
    # Says it runs in France: kept and shown, but counted under its origin, Portugal. The
    # x- term is a later version's: kept, not counted.
    "b": BODY | {"country": "FR", "intervention_types": ["mentoring", "x-peer_circles"]},
    "c": BODY | {"title": "Mentoring, second cohort", "summary": "Mentors help; age < 25."},
}
# (what the entry is, the payload's changes, what its refusal says)
POISONS: list[tuple[str, dict[str, Any], str]] = [
    ("a NUL in the title", {"body": BODY | {"title": "Mentoring\x00"}}, "U+0000"),
    ("an over-long id", {"id": "PT:" + "x" * 200}, "is not CC:local-id"),
    ("a version no INTEGER holds", {"version": 2**40}, "not an integer from 1"),
    ("a lone surrogate", {"body": BODY | {"summary": "Mentors \ud800 help"}}, "summary"),
    ("terminal escapes", {"body": BODY | {"summary": "Mentors\x1b[2J help"}}, "U+001B"),
    ("a C1 control", {"body": BODY | {"title": "Mentoring\x85"}}, "U+0085"),
    ("a bidi override", {"body": BODY | {"title": "Mentoring \u202egnirotneM"}}, "U+202E"),
    (
        "a javascript: link",
        {"body": BODY | {"links": [{"title": "More", "url": "javascript:alert(1)"}]}},
        "http(s)",
    ),
    ("markup", {"body": BODY | {"title": "<script>alert(1)</script>"}}, "markup"),
    ("an unknown term", {"body": BODY | {"intervention_types": ["sorcery"]}}, "sorcery"),
    ("an unknown kind", {"body": BODY | {"kind": "manifesto"}}, "manifesto"),
    # What the personal-data gate finds once the text is normalised, and a text too long to read.
    (
        "an obfuscated e-mail address",
        {"body": BODY | {"summary": "Write to jean [dot] dupont [at] example [dot] org"}},
        "personal data",
    ),
    (
        "a date of birth",
        {"body": BODY | {"summary": "The mentor, born on 12.03.1980 in Patras, leads it."}},
        "personal data",
    ),
    ("a text too long to read", {"body": BODY | {"summary": "Mentors help. " * 8_000}}, "summary"),
    ("another country's record", {"id": "FR:d"}, "outside the PT namespace"),
    ("another country's origin", {"origin": "FR"}, "an entry of origin FR"),
]


def as_sent(value: Any) -> bytes:
    """What a rogue peer signs and hashes: canonical JSON (no astral characters here), a lone
    surrogate written as the escape it travels as."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8", "backslashreplace")


def add(peer: Peer, payload: dict[str, Any]) -> None:
    """Sign an entry as a rogue peer would, over the bytes it hashes."""
    envelope = {
        "payload": payload,
        "key": peer.key.key_id,
        "sig": peer.key.sign(as_sent(payload)),
    }
    peer.add_raw(json.dumps(envelope).encode())


def checkpoint(peer: Peer) -> str:
    """Sign the Merkle root over every entry's leaf, lone surrogates and all; return it."""
    leaves = [leaf_hash(as_sent(json.loads(data)["payload"])) for data in peer.raw]
    body = {"origin": peer.origin, "size": len(peer.raw), "root": root(leaves).hex(), "time": NOW}
    signed = {"checkpoint": body, "key": peer.key.key_id, "sig": peer.key.sign(as_sent(body))}
    (peer.dir / "checkpoint.json").write_text(json.dumps(signed))
    return str(body["root"])


def sync(db: str, data: Path, command: str = "hub") -> str:
    """One round, by a hub that relays what it accepts (or by a mirror)."""
    result = (
        env_hub(db, data, command, "sync")
        if command == "hub"
        else hub_cli(db, data, command, "sync")
    )
    return str(result.stdout + result.stderr)


def state(db: str) -> tuple[Any, ...]:
    """What a hub holds, to compare with a hub that never saw the poison: every record (origin,
    id, version, withdrawal, body hash) and the hub's own feed relaying them, entry by entry
    (the relays' envelopes differ: the undisturbed peer numbered its entries without gaps)."""
    digest, count, _ = state_digest(db)
    relayed = rows(db, "SELECT seq, record_id, version, op FROM feed_entry ORDER BY seq")
    return digest, count, [tuple(r) for r in relayed]


def facets(db: str, facet: str) -> list[str]:
    return sorted(
        value
        for (value,) in rows(
            db,
            "SELECT f.value FROM search_facet f JOIN search_document d ON d.doc_no = f.doc_no"
            f" WHERE d.active AND f.facet = '{facet}'",
        )
    )


def test_each_poison_is_refused_alone_and_the_rest_applied(
    database: Database, tmp_path: Path, serve: Any
) -> None:
    rogue, calm = Peer(tmp_path / "rogue", "PT"), Peer(tmp_path / "calm", "PT")
    poisoned_seqs = {}
    add(rogue, rogue.payload("a", 1, GOOD["a"]))
    for name, changes, _ in POISONS:
        poisoned_seqs[name] = len(rogue.raw) + 1
        add(rogue, rogue.payload(f"p{len(rogue.raw)}", 1) | changes)
    for rid in ("b", "c"):
        add(rogue, rogue.payload(rid, 1, GOOD[rid]))
    for rid, body in GOOD.items():
        add(calm, calm.payload(rid, 1, body))
    checkpoint(rogue)
    checkpoint(calm)
    rogue_db, rogue_data = enrolled_hub(database, tmp_path, "hub", {serve(rogue): rogue})
    calm_db, calm_data = enrolled_hub(database, tmp_path, "calm-hub", {serve(calm): calm})

    assert f"PT: 3 applied, 0 unchanged, {len(POISONS)} refused" in sync(rogue_db, rogue_data)
    assert "PT: 3 applied, 0 unchanged, 0 refused" in sync(calm_db, calm_data)
    reasons = dict(rows(rogue_db, "SELECT seq, reason FROM sync_refusal WHERE seq IS NOT NULL"))
    assert set(reasons) == set(poisoned_seqs.values())
    for name, _, reason in POISONS:
        assert reason in reasons[poisoned_seqs[name]], (name, reasons[poisoned_seqs[name]])
    assert state(rogue_db) == state(calm_db)
    assert state(rogue_db)[1] == 3 and len(state(rogue_db)[2]) == 3
    # The search index has every applied record, each under its origin's country, and counts
    # only terms this version knows.
    assert len(searchable(rogue_db)) == 3
    assert searchable(rogue_db) == searchable(calm_db)
    assert facets(rogue_db, "country") == ["PT", "PT", "PT"]
    assert facets(rogue_db, "intervention_type") == ["mentoring"]
    _, envelope = held_records(rogue_db)["PT:b"]
    assert "x-peer_circles" in envelope and '"country":"FR"' in envelope

    # The frontier stayed right through the lone surrogate: the peer's next entries are
    # checked against its signed root and applied.
    add(rogue, rogue.payload("d", 1, BODY | {"title": "Mentoring, third cohort"}))
    add(calm, calm.payload("d", 1, BODY | {"title": "Mentoring, third cohort"}))
    rogue_root = checkpoint(rogue)
    checkpoint(calm)
    due_now(rogue_db)
    due_now(calm_db)
    assert "PT: 1 applied, 0 unchanged, 0 refused" in sync(rogue_db, rogue_data)
    assert "PT: 1 applied, 0 unchanged, 0 refused" in sync(calm_db, calm_data)
    assert rows(rogue_db, "SELECT checkpoint_root FROM peer_sync") == [(rogue_root,)]
    assert state(rogue_db) == state(calm_db)
    assert searchable(rogue_db) == searchable(calm_db)


def relay(hub: Peer, origin: Peer, payload: dict[str, Any]) -> None:
    """A rogue hub relaying an origin's entry signed over what it hashes."""
    envelope = {
        "payload": payload,
        "key": origin.key.key_id,
        "sig": origin.key.sign(as_sent(payload)),
    }
    add(hub, hub.relay(envelope))


def test_a_mirror_refuses_relayed_poison_alone(
    database: Database, tmp_path: Path, serve: Any
) -> None:
    """A hub that relays poison (an older hub, or a rogue one): the mirror refuses each such
    relay alone and holds what a mirror of a clean hub holds."""
    pt = Peer(tmp_path / "pt", "PT")
    rogue, calm = Peer(tmp_path / "rogue", "EU"), Peer(tmp_path / "calm", "EU")
    for hub in (rogue, calm):
        hub.directory({"PT": [listed(pt.key)]})
    relay(rogue, pt, pt.payload("a", 1, GOOD["a"]))
    relay(calm, pt, pt.payload("a", 1, GOOD["a"]))
    relayed = [p for p in POISONS if "another country" not in p[0]]
    for n, (_, changes, _) in enumerate(relayed):
        relay(rogue, pt, pt.payload(f"p{n}", 1) | changes)
    for rid in ("b", "c"):
        relay(rogue, pt, pt.payload(rid, 1, GOOD[rid]))
        relay(calm, pt, pt.payload(rid, 1, GOOD[rid]))
    checkpoint(rogue)
    checkpoint(calm)
    outcomes = []
    for name, hub in (("rogue-mirror", rogue), ("calm-mirror", calm)):
        db, data = database.fresh_copy(), tmp_path / name
        added = hub_cli(db, data, "mirror", "add", "--url", serve(hub), "--key", hub.key.public_b64)
        assert added.returncode == 0, added.stderr
        outcomes.append((db, sync(db, data, "mirror")))
    (rogue_db, rogue_out), (calm_db, calm_out) = outcomes
    assert f"EU: 3 applied, 0 unchanged, {len(relayed)} refused" in rogue_out, rogue_out
    assert "EU: 3 applied, 0 unchanged, 0 refused" in calm_out, calm_out
    assert state_digest(rogue_db) == state_digest(calm_db)
    reasons = [
        r
        for (r,) in rows(
            rogue_db, "SELECT reason FROM sync_refusal WHERE seq IS NOT NULL ORDER BY seq"
        )
    ]
    for (name, _, reason), stored in zip(relayed, reasons, strict=True):
        assert reason in stored, (name, stored)


def plant(session: Session, rid: str, body: Any) -> None:
    """A record as an earlier version stored it, before the schema refused what it holds."""
    payload = {"origin": "PT", "seq": 1, "type": "practice", "id": rid, "version": 1}
    envelope = {"payload": payload | {"op": "upsert", "body": body, "time": NOW}, "key": "k"}
    session.add(
        FederatedRecord(
            record_id=rid,
            origin="PT",
            record_type="practice",
            version=1,
            body_hash=uuid.uuid4().hex,
            envelope=json.dumps(envelope | {"sig": "s"}),
            origin_seq=1,
            search_id=search_id(rid),
            indexed=False,
        )
    )


def test_a_record_the_index_cannot_take_is_left_out_and_blocks_nothing(
    database: Database, tmp_path: Path
) -> None:
    """Records stored before the schema was strict: one whose body breaks the index (a NUL,
    which PostgreSQL cannot store; a body of the wrong shape) is left out and logged, the rest
    of its batch is indexed, and the next catch-up does not try it again."""
    db = database.fresh_copy()
    engine = create_engine(sync_url(db))
    search = make_backend(Settings(database_url=db, data_dir=tmp_path))
    with Session(engine) as session:
        for n in range(5):
            plant(session, f"PT:good{n}", BODY | {"title": f"Mentoring {n}"})
        plant(session, "PT:nul", BODY | {"title": "Mentoring\x00"})
        plant(session, "PT:shape", BODY | {"translations": "not a list"})
        session.commit()
        assert index_pending(session, search) == 7
        assert index_pending(session, search) == 0  # nothing pending, nothing tried again
    engine.dispose()
    indexed = {uuid.UUID(str(r[0])) for r in searchable(db)}
    assert {search_id(f"PT:good{n}") for n in range(5)} <= indexed
    assert search_id("PT:shape") not in indexed
    assert rows(db, "SELECT count(*) FROM federated_record WHERE NOT indexed") == [(0,)]


@pytest.mark.parametrize(
    ("changes", "refused"),
    [
        ({"links": [{"title": "T", "url": "data:text/plain;base64,SGk="}]}, "http(s)"),
        ({"links": [{"title": "T", "url": "file:///etc/passwd"}]}, "http(s)"),
        ({"links": [{"title": "T", "url": " javascript:alert(1)"}]}, "no spaces"),
        ({"links": [{"title": "T", "url": "https://bank.example@evil.example/"}]}, "user name"),
        ({"links": [{"title": "T", "url": "https:///no-host"}]}, "http(s)"),
        ({"title": "Mentoring\u200bprogramme"}, "U+200B"),  # one-line text: no zero-width space
        ({"summary": "Line one\rline two"}, "U+000D"),  # a carriage return alone
        ({"summary": "Tags \U000e0041\U000e0042 hide text"}, "U+E0041"),
        ({"summary": "<!-- hidden -->"}, "markup"),
        ({"summary": "Read </p><img src=x onerror=alert(1)>"}, "markup"),
        ({"language": "xx"}, "language"),
        ({"country": "France"}, "country"),
        ({"kind": "x-Manifesto"}, "kind"),  # the x- namespace has its alphabet too
    ],
)
def test_the_schema_refuses_what_cannot_travel(changes: dict[str, Any], refused: str) -> None:
    with pytest.raises(ValidationError) as caught:
        SharedPractice.model_validate(BODY | changes)
    assert refused in str(caught.value)


def test_the_schema_keeps_ordinary_text_links_and_newer_terms() -> None:
    body = BODY | {
        "title": "Mentoring — «suivi» (16–25)",
        "summary": "Mentors help people aged < 25.\r\nZero\u200bwidth spaces pasted in prose stay.",
        "links": [{"title": "Page", "url": "HTTPS://www.example.pt/a?b=c#d"}],
        "intervention_types": ["mentoring", "x-peer_circles"],
    }
    kept = SharedPractice.model_validate(body).model_dump(exclude_defaults=True, mode="json")
    assert kept == body


def test_a_newer_term_is_counted_once_this_version_knows_it() -> None:
    assert terms("intervention_type", ["x-mentoring", "mentoring", "x-peer_circles", 5]) == [
        "mentoring"
    ]
    assert terms("language", "en") == ["en"] and terms("language", None) == []
