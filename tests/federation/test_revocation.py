"""Revocation by what the hub saw, against rogue nodes served as real processes: a revoked key
signs nothing after the entries the hub had accepted when it was revoked, whatever date it
writes; it rotates nothing; the keys it introduced fall with it; a rotation waits for the
operator's confirmation; the hub's directory carries revocations to mirrors; `integra verify`
checks a key's window and revocation."""

import json
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from federation import feed, keys
from federation.canonical import canonical
from federation.sync import relay_for, signed_directory
from node.core.settings import Settings, sync_url
from tests.conftest import Database, run_cli
from tests.federation.forgery import BODY, NOW, Peer, due_now, enrolled_hub, rows
from tests.federation.test_crash import state_digest
from tests.federation.test_migrations import migrate

HUB = {"INTEGRA_COUNTRY": "EU", "INTEGRA_ROLE": "hub"}
LONG_AGO = "2020-01-01T00:00:00Z"  # what a rogue node writes to pass a time-bound revocation


def hub(db: str, data: Path, *args: str) -> Any:
    return run_cli(*args, database_url=db, data_dir=data, env=HUB)


def synced(db: str, data: Path, expected: str) -> str:
    result = hub(db, data, "hub", "sync")
    assert expected in result.stdout, result.stdout + result.stderr + str(reasons(db))
    return str(result.stdout)


def said(text: str) -> str:
    """Console output with its lines unwrapped."""
    return " ".join(text.split())


def undisturbed(db: str) -> tuple[Any, ...]:
    """The records (origin, id, version, body hash) and what the hub relayed of them, in order:
    the relay entries' own hashes cover the origin's signature, which differs between runs."""
    relayed = rows(db, "SELECT seq, record_id, version, op FROM feed_entry ORDER BY seq")
    return state_digest(db)[:2], [tuple(r) for r in relayed]


def reasons(db: str) -> dict[int, str]:
    return dict(rows(db, "SELECT seq, reason FROM sync_refusal WHERE seq IS NOT NULL"))


def records(db: str) -> dict[str, int]:
    return dict(rows(db, "SELECT record_id, version FROM federated_record"))


def rotation(origin: str, old: keys.SigningKey, new: keys.SigningKey, **at: Any) -> dict[str, Any]:
    """A key-rotation announcement as `integra keys rotate` writes it (`seq`: the last entry the
    old key signed)."""
    statement = {
        "type": "key-rotation",
        "origin": origin,
        "previous": old.key_id,
        "key": new.key_id,
        "public_key": new.public_b64,
        "time": at.get("time", NOW),
    } | ({"seq": at["seq"]} if "seq" in at else {})
    return {
        "statement": statement,
        "signatures": [{"key": k.key_id, "sig": k.sign(canonical(statement))} for k in (old, new)],
    }


def announce(peer: Peer, *announcements: dict[str, Any]) -> None:
    """Serve the peer's keys document with these rotation announcements."""
    listing = [
        {
            "key_id": a["statement"]["key"],
            "public_key": a["statement"]["public_key"],
            "announcement": a,
        }
        for a in announcements
    ]
    (peer.dir / "keys.json").write_text(json.dumps({"origin": peer.origin, "keys": listing}))


def directory(db: str, data: Path) -> dict[str, Any]:
    """The hub's signed directory, as GET /federation/v1/directory serves it."""
    engine = create_engine(sync_url(db))
    settings = Settings(database_url=db, data_dir=data, country="EU", role="hub")
    with Session(engine) as session:
        relay = relay_for(session, settings)
        assert relay is not None
        signed = signed_directory(session, relay)
    engine.dispose()
    return signed


def listed(signed: dict[str, Any], origin: str) -> dict[str, dict[str, Any]]:
    [node] = [n for n in signed["directory"]["nodes"] if n["origin"] == origin]
    return {k["key_id"]: k for k in node["keys"]}


def test_an_entry_signed_after_the_revocation_is_refused_whatever_date_it_claims(
    database: Database, tmp_path: Path, serve: Any
) -> None:
    peer = Peer(tmp_path / "pt", "PT")
    signer, spare = peer.key, keys.generate()
    peer.add(peer.payload("a", 1))
    peer.add(peer.payload("b", 1))
    peer.checkpoint()
    url = serve(peer)
    db, data = enrolled_hub(database, tmp_path, "hub", {url: peer})
    synced(db, data, "PT: 2 applied, 0 unchanged, 0 refused")
    added = hub(
        db, data, "hub", "enrol", "--country", "PT", "--url", url, "--key", spare.public_b64
    )
    assert added.returncode == 0, added.stderr
    revoked = hub(db, data, "hub", "revoke-key", signer.key_id)
    assert revoked.returncode == 0 and f"revoked {signer.key_id} after seq 2" in revoked.stdout

    # The rogue node goes on signing with the revoked key, dating its entries years back.
    peer.add(peer.payload("c", 1, time=LONG_AGO))  # 3
    peer.add(peer.payload("d", 1), key=spare)  # 4
    peer.add(peer.payload("a", 2, BODY | {"title": "Mentoring, taken over"}, time=LONG_AGO))  # 5
    peer.add(peer.payload("e", 1), key=spare)  # 6
    peer.key = spare
    peer.checkpoint()
    due_now(db)
    synced(db, data, "PT: 2 applied, 0 unchanged, 2 refused")
    refused = reasons(db)
    for seq in (3, 5):
        assert refused[seq] == f"signed by key {signer.key_id} after its revocation (at seq 2)"
    assert records(db) == {"PT:a": 1, "PT:b": 1, "PT:d": 1, "PT:e": 1}
    # The `--at` of old scripts widens nothing: the bound stays what the hub had accepted.
    again = hub(db, data, "hub", "revoke-key", signer.key_id, "--at", "2019-01-01T00:00:00")
    assert (
        again.returncode == 0 and "after seq 2" in again.stdout and "ignored" in said(again.stderr)
    )

    calm = Peer(tmp_path / "calm", "PT")  # the same records, with no rogue entry among them
    for rid in ("a", "b", "d", "e"):
        calm.add(calm.payload(rid, 1))
    calm.checkpoint()
    calm_db, calm_data = enrolled_hub(database, tmp_path, "calm-hub", {serve(calm): calm})
    synced(calm_db, calm_data, "PT: 4 applied")
    assert undisturbed(db) == undisturbed(calm_db)


def test_a_revoked_key_rotates_nothing_however_far_back_the_rotation_is_dated(
    database: Database, tmp_path: Path, serve: Any
) -> None:
    peer = Peer(tmp_path / "pt", "PT")
    signer, spare, fresh = peer.key, keys.generate(), keys.generate()
    peer.add(peer.payload("a", 1))
    peer.checkpoint()
    url = serve(peer)
    db, data = enrolled_hub(database, tmp_path, "hub", {url: peer})
    trusting = hub(
        db, data, "hub", "enrol", "--country", "PT", "--url", url,
        "--key", spare.public_b64, "--auto-rotate",
    )  # fmt: skip
    assert trusting.returncode == 0, trusting.stderr
    synced(db, data, "PT: 1 applied")
    assert hub(db, data, "hub", "revoke-key", signer.key_id).returncode == 0

    # A rotation to a fresh key, signed by the revoked key and dated before anything.
    announce(peer, rotation("PT", signer, fresh, seq=0, time=LONG_AGO))
    peer.add(peer.payload("b", 1, time=LONG_AGO), key=fresh)  # 2
    peer.add(peer.payload("c", 1), key=spare)  # 3
    peer.key = spare
    peer.checkpoint()
    due_now(db)
    synced(db, data, "PT: 1 applied, 0 unchanged, 1 refused")
    assert f"not enrolled here ({fresh.key_id})" in reasons(db)[2]
    why = f"key rotation to {fresh.key_id} refused: announced by key {signer.key_id}"
    [(refusal,)] = rows(db, "SELECT reason FROM sync_refusal WHERE seq IS NULL")
    assert refusal == f"{why} after its revocation (at seq 1)"
    assert {k for (k,) in rows(db, "SELECT key_id FROM peer_key")} == {signer.key_id, spare.key_id}
    keys_listed = listed(directory(db, data), "PT")
    assert set(keys_listed) == {signer.key_id, spare.key_id}
    assert keys_listed[signer.key_id]["revoked_seq"] == 1
    assert keys_listed[spare.key_id]["revoked_seq"] is None

    due_now(db)  # the announcement stays refused, and is recorded once
    synced(db, data, "PT: 0 applied, 0 unchanged, 0 refused")
    assert rows(db, "SELECT count(*) FROM sync_refusal WHERE seq IS NULL") == [(1,)]
    assert rows(db, "SELECT count(*) FROM audit_entry WHERE action = 'key_rotation_refused'") == [
        (1,)
    ]


def test_revoking_a_key_revokes_the_keys_it_introduced_at_the_same_bound(
    database: Database, tmp_path: Path, serve: Any
) -> None:
    peer = Peer(tmp_path / "pt", "PT")
    first, second, third, spare = peer.key, keys.generate(), keys.generate(), keys.generate()
    announce(peer, rotation("PT", first, second, seq=2), rotation("PT", second, third, seq=3))
    peer.add(peer.payload("a", 1))  # 1 first
    peer.add(peer.payload("b", 1))  # 2 first
    peer.add(peer.payload("c", 1), key=second)  # 3
    peer.add(peer.payload("d", 1), key=third)  # 4
    peer.checkpoint()
    url = serve(peer)
    db, data = enrolled_hub(database, tmp_path, "hub", {url: peer})
    trusting = hub(
        db, data, "hub", "enrol", "--country", "PT", "--url", url,
        "--key", spare.public_b64, "--auto-rotate",
    )  # fmt: skip
    assert trusting.returncode == 0, trusting.stderr
    synced(db, data, "PT: 4 applied, 0 unchanged, 0 refused")
    introduced = dict(rows(db, "SELECT key_id, introduced_by FROM peer_key"))
    assert introduced[second.key_id] == first.key_id
    assert introduced[third.key_id] == second.key_id

    revoked = hub(db, data, "hub", "revoke-key", first.key_id)
    assert revoked.returncode == 0, revoked.stderr
    for key in (first, second, third):
        assert f"revoked {key.key_id} after seq 4" in revoked.stdout, revoked.stdout
    peer.add(peer.payload("e", 1, time=LONG_AGO), key=second)  # 5
    peer.add(peer.payload("f", 1, time=LONG_AGO), key=third)  # 6
    peer.add(peer.payload("g", 1), key=spare)  # 7
    peer.key = spare
    peer.checkpoint()
    due_now(db)
    synced(db, data, "PT: 1 applied, 0 unchanged, 2 refused")
    refused = reasons(db)
    assert refused[5] == f"signed by key {second.key_id} after its revocation (at seq 4)"
    assert refused[6] == f"signed by key {third.key_id} after its revocation (at seq 4)"
    assert set(records(db)) == {"PT:a", "PT:b", "PT:c", "PT:d", "PT:g"}
    shown = hub(db, data, "hub", "keys").stdout
    for key in (first, second, third):
        assert f"{key.key_id}\trevoked at seq 4" in shown, shown
    assert f"{spare.key_id}\ttrusted" in shown
    audited = rows(db, "SELECT entity_id FROM audit_entry WHERE action = 'revoke'")
    assert {k for (k,) in audited} == {first.key_id, second.key_id, third.key_id}


def test_a_rotation_waits_for_the_operator_and_its_entries_are_taken_once_confirmed(
    database: Database, tmp_path: Path, serve: Any
) -> None:
    peer = Peer(tmp_path / "pt", "PT")
    old, new = peer.key, keys.generate()
    announce(peer, rotation("PT", old, new, seq=1))
    peer.add(peer.payload("a", 1))  # 1 old
    peer.add(peer.payload("b", 1), key=new)  # 2
    peer.add(peer.payload("c", 1), key=new)  # 3
    peer.checkpoint()  # still signed by the old key
    url = serve(peer)
    db, data = enrolled_hub(database, tmp_path, "hub", {url: peer})

    for applied in (1, 0):  # the feed waits at the first entry of the unconfirmed key
        due_now(db)
        synced(db, data, f"PT: {applied} applied, 0 unchanged, 1 refused")
        assert rows(db, "SELECT cursor FROM peer_sync") == [(1,)]
    [(seq, reason)] = rows(db, "SELECT seq, reason FROM sync_refusal")
    assert seq == 2 and f"key {new.key_id}" in reason
    assert f"awaits the operator's confirmation (integra hub confirm-key {new.key_id})" in reason
    shown = hub(db, data, "hub", "keys").stdout
    assert f"{new.key_id}\tawaiting confirmation" in shown and old.key_id in shown
    assert set(listed(directory(db, data), "PT")) == {old.key_id}
    assert rows(db, "SELECT action FROM audit_entry WHERE actor = 'sync'") == [
        ("key_rotation_held",)
    ]

    peer.key = new  # as a real node: its checkpoint is signed by its current key
    peer.checkpoint()
    due_now(db)
    failed = hub(db, data, "hub", "sync")
    assert failed.returncode == 2 and "awaits the operator's confirmation" in said(failed.stderr)

    wrong = hub(db, data, "hub", "confirm-key", new.key_id, "--fingerprint", "0000 1111")
    assert wrong.returncode == 1 and "not that of key" in said(wrong.stderr)
    confirmed = hub(
        db, data, "hub", "confirm-key", new.key_id, "--fingerprint", keys.fingerprint(new.key_id)
    )
    assert confirmed.returncode == 0, confirmed.stderr
    assert rows(db, "SELECT entity_id FROM audit_entry WHERE action = 'key_confirm'") == [
        (new.key_id,)
    ]
    synced(db, data, "PT: 2 applied, 0 unchanged, 0 refused")  # due again once confirmed
    assert records(db) == {"PT:a": 1, "PT:b": 1, "PT:c": 1}
    assert rows(db, "SELECT cursor, checkpoint_size FROM peer_sync") == [(3, 3)]
    assert set(listed(directory(db, data), "PT")) == {old.key_id, new.key_id}

    calm = Peer(tmp_path / "calm", "PT")
    for rid in ("a", "b", "c"):
        calm.add(calm.payload(rid, 1))
    calm.checkpoint()
    calm_db, calm_data = enrolled_hub(database, tmp_path, "calm-hub", {serve(calm): calm})
    synced(calm_db, calm_data, "PT: 3 applied")
    assert undisturbed(db) == undisturbed(calm_db)


def test_a_mirror_applies_the_directory_revocation_and_verify_reports_it(
    database: Database, tmp_path: Path, serve: Any
) -> None:
    """The hub revokes PT's key; a rogue relay signed with the hub's own key (the hub's key
    stolen, say) still cannot pass PT's later entries to a mirror, nor `integra verify`."""
    pt = Peer(tmp_path / "pt", "PT")
    signer, spare = pt.key, keys.generate()
    pt.add(pt.payload("a", 1))
    pt.add(pt.payload("b", 1))
    pt.checkpoint()
    url = serve(pt)
    db, data = enrolled_hub(database, tmp_path, "hub", {url: pt})
    synced(db, data, "PT: 2 applied")
    added = hub(
        db, data, "hub", "enrol", "--country", "PT", "--url", url, "--key", spare.public_b64
    )
    assert added.returncode == 0, added.stderr
    assert hub(db, data, "hub", "revoke-key", signer.key_id).returncode == 0
    signed = directory(db, data)
    keys_listed = listed(signed, "PT")
    assert keys_listed[signer.key_id]["revoked_seq"] == 2
    assert keys_listed[spare.key_id]["valid_from_seq"] == 3  # valid from its enrolment

    [(hub_key_id,)] = rows(db, "SELECT key_id FROM node_key")
    settings = Settings(database_url=db, data_dir=data, country="EU", role="hub")
    rogue = Peer(tmp_path / "eu", "EU")
    rogue.key = keys.load(feed.key_path(settings, hub_key_id))
    (rogue.dir / "directory.json").write_text(json.dumps(signed))
    rogue.add(rogue.relay(json.loads(pt.raw[0])))  # 1
    rogue.add(rogue.relay(json.loads(pt.raw[1])))  # 2
    late = pt.envelope(pt.payload("c", 1, time=LONG_AGO))  # PT's seq 3, by the revoked key
    rogue.add(rogue.relay(late))  # 3
    rogue.add(rogue.relay(pt.envelope(pt.payload("d", 1, seq=4), key=spare)))  # 4
    early = pt.envelope(pt.payload("e", 1, seq=1), key=spare)  # before the spare's enrolment
    rogue.add(rogue.relay(early))  # 5
    rogue.checkpoint()
    mirror_db, mirror_data = database.fresh_copy(), tmp_path / "fr"
    added = run_cli(
        "mirror", "add", "--url", serve(rogue), "--key", rogue.key.public_b64,
        database_url=mirror_db, data_dir=mirror_data,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    mirrored = run_cli("mirror", "sync", database_url=mirror_db, data_dir=mirror_data)
    assert "EU: 3 applied, 0 unchanged, 2 refused" in mirrored.stdout, mirrored.stderr
    refused = reasons(mirror_db)
    assert refused[3] == (
        f"the origin's envelope: signed by key {signer.key_id} after its revocation (at seq 2)"
    )
    assert f"outside the validity window of key {spare.key_id} (entries 3–)" in refused[5]
    assert set(records(mirror_db)) == {"PT:a", "PT:b", "PT:d"}

    documents = tmp_path / "verify"
    documents.mkdir()
    written = {
        "eu-keys": {
            "origin": "EU",
            "keys": [{"key_id": hub_key_id, "public_key": rogue.key.public_b64}],
        },
        "pt-keys": {
            "origin": "PT",
            "keys": [{"key_id": k.key_id, "public_key": k.public_b64} for k in (signer, spare)],
        },
        "directory": signed,
        "before": json.loads(rogue.raw[1]),
        "after": json.loads(rogue.raw[2]),
        "early": json.loads(rogue.raw[4]),
    }
    for name, document in written.items():
        (documents / f"{name}.json").write_text(json.dumps(document))

    def verify(record: str, *more: str) -> Any:
        return run_cli(
            "verify", str(documents / f"{record}.json"),
            "--keys", str(documents / "eu-keys.json"), "--keys", str(documents / "pt-keys.json"),
            *more, database_url=mirror_db, data_dir=mirror_data,
        )  # fmt: skip

    with_directory = ("--directory", str(documents / "directory.json"))
    assert verify("after").returncode == 0  # the keys alone know no revocation
    revoked = verify("after", *with_directory)
    assert revoked.returncode == 1, revoked.stdout + revoked.stderr
    assert f"INVALID: signed by key {signer.key_id} after its revocation (at seq 2)" in said(
        revoked.stdout
    )
    assert verify("before", *with_directory).returncode == 0
    early_check = verify("early", *with_directory)
    assert early_check.returncode == 1
    assert f"outside the validity window of key {spare.key_id}" in said(early_check.stdout)


def test_keys_revoked_before_the_upgrade_are_bound_to_what_the_hub_had_accepted(
    database: Database,
) -> None:
    db = database.fresh_copy()
    migrate(db, "0009", down=True)
    engine = create_engine(sync_url(db))
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO peer (id, origin, kind, base_url, enrolled_at, active)"
                " VALUES (1, 'PT', 'node', 'http://pt', '2026-11-30', :t)"
            ),
            {"t": True},
        )
        conn.execute(
            text(
                "INSERT INTO peer_sync (peer_id, cursor, checkpoint_size, failures)"
                " VALUES (1, 7, 9, 0)"
            )
        )
        for key_id, revoked_at in (("kr", "2030-01-01"), ("kt", None)):
            conn.execute(
                text(
                    "INSERT INTO peer_key (key_id, peer_id, public_key, valid_from, revoked_at)"
                    " VALUES (:k, 1, 'p', '2000-01-01', :r)"
                ),
                {"k": key_id, "r": revoked_at},
            )
    engine.dispose()
    migrate(db, "0010")
    found = rows(db, "SELECT key_id, revoked_seq, revoked_size FROM peer_key ORDER BY key_id")
    assert [tuple(r) for r in found] == [("kr", 7, 9), ("kt", None, None)]
    engine = create_engine(sync_url(db))
    with engine.begin() as conn:  # an enrolled key has no start in time any more
        conn.execute(
            text("INSERT INTO peer_key (key_id, peer_id, public_key) VALUES ('kn', 1, 'p')")
        )
    engine.dispose()
    migrate(db, "0009", down=True)
    assert rows(db, "SELECT count(*) FROM peer_key WHERE valid_from IS NULL") == [(0,)]
