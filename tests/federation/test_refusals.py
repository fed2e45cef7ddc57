"""What the hub refuses, each entry on its own, while it applies the rest of the feed."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from federation import keys
from federation.canonical import canonical
from tests.conftest import Database
from tests.federation.forgery import BODY, NOW, Peer, due_now, hub_cli, rows


def test_bad_entries_are_refused_with_reasons_and_the_rest_applied(
    database: Database, tmp_path: Path, serve: Any
) -> None:
    peer = Peer(tmp_path / "pt", "PT")
    stranger, revoked = keys.generate(), keys.generate()
    peer.add(peer.payload("a", 1))  # 1 accepted
    tampered = json.dumps(
        {
            "payload": peer.payload("b", 1),
            "key": peer.key.key_id,
            "sig": peer.key.sign(canonical(peer.payload("b", 1))),
        }
    )
    peer.add_raw(tampered.replace("Mentoring", "Mentorinh").encode())  # 2 one byte changed
    peer.add(peer.payload("c", 1), key=stranger)  # 3 unenrolled key
    peer.add(peer.payload("d", 1) | {"id": "FR:d"})  # 4 another namespace
    peer.add(peer.payload("e", 1), key=revoked)  # 5 revoked key
    peer.add(peer.payload("a", 3, BODY | {"title": "Mentoring, v3"}))  # 6 accepted update
    peer.add(peer.payload("a", 2))  # 7 replayed older
    peer.add_raw(b'{"payload": {"seq": 8}, "payload": {"seq": 8}, "key": "k", "sig": "s"}')  # 8
    peer.add_raw(b'{"payload": ' + b"[" * 60 + b"]" * 60 + b', "key": "k", "sig": "s"}')  # 9
    peer.add_raw(b'{"payload": "' + b"x" * (5 * 1024 * 1024) + b'", "key": "k", "sig": "s"}')  # 10
    peer.add(peer.payload("f", 1, BODY | {"summary": "Write to a.b@example.org"}))  # 11 e-mail
    peer.add(peer.payload("g", 1))  # 12 accepted
    peer.checkpoint()
    url = serve(peer)

    db, data = database.fresh_copy(), tmp_path / "hub"
    enrolled = hub_cli(
        db,
        data,
        "hub",
        "enrol",
        "--country",
        "PT",
        "--url",
        url,
        "--key",
        peer.key.public_b64,
        "--key",
        revoked.public_b64,
    )
    assert enrolled.returncode == 0, enrolled.stderr
    past = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    assert hub_cli(db, data, "hub", "revoke-key", revoked.key_id, "--at", past).returncode == 0

    result = hub_cli(db, data, "hub", "sync")
    assert "PT: 3 applied, 0 unchanged, 9 refused" in result.stdout, result.stdout + result.stderr
    held = dict(rows(db, "SELECT record_id, version FROM federated_record"))
    assert held == {"PT:a": 3, "PT:g": 1}
    reasons = {
        seq: reason
        for seq, reason in rows(db, "SELECT seq, reason FROM sync_refusal WHERE seq IS NOT NULL")
    }
    assert "signature does not match" in reasons[2]
    assert "not enrolled" in reasons[3]
    assert "outside the PT namespace" in reasons[4]
    assert "after its revocation" in reasons[5]
    assert "replay of version 2" in reasons[7]
    for seq in (8, 9, 10):
        assert "unreadable entry" in reasons[seq], reasons[seq]
    assert "personal data" in reasons[11] and "e-mail" in reasons[11]

    due_now(db)
    again = hub_cli(db, data, "hub", "sync")
    assert "PT: 0 applied, 0 unchanged, 0 refused" in again.stdout


def test_a_rewritten_history_is_refused_and_nothing_of_it_applied(
    database: Database, tmp_path: Path, serve: Any
) -> None:
    peer = Peer(tmp_path / "gr", "GR")
    peer.add(peer.payload("a", 1))
    peer.add(peer.payload("b", 1))
    peer.checkpoint()
    url = serve(peer)
    db, data = database.fresh_copy(), tmp_path / "hub"
    hub_cli(db, data, "hub", "enrol", "--country", "GR", "--url", url, "--key", peer.key.public_b64)
    assert "GR: 2 applied" in hub_cli(db, data, "hub", "sync").stdout

    rewritten = peer.payload("a", 1, BODY | {"title": "Quietly changed"}) | {"seq": 1}
    peer.raw[0] = json.dumps(
        {"payload": rewritten, "key": peer.key.key_id, "sig": peer.key.sign(canonical(rewritten))}
    ).encode()
    (peer.dir / "entries" / "1.json").write_bytes(peer.raw[0])
    peer.add(peer.payload("c", 1))
    peer.checkpoint()
    due_now(db)
    result = hub_cli(db, data, "hub", "sync")
    assert result.returncode == 2 and "history was rewritten" in result.stderr
    assert dict(rows(db, "SELECT record_id, version FROM federated_record")) == {
        "GR:a": 1,
        "GR:b": 1,
    }
    [(cursor, error)] = rows(db, "SELECT cursor, last_error FROM peer_sync")
    assert cursor == 2 and "history was rewritten" in error


def listed(key: keys.SigningKey, revoked_at: str | None = None) -> dict[str, Any]:
    return {
        "key_id": key.key_id,
        "public_key": key.public_b64,
        "valid_from": "2020-01-01T00:00:00Z",
        "valid_until": None,
        "revoked_at": revoked_at,
    }


def test_a_mirror_checks_both_signatures_of_every_relayed_record(
    database: Database, tmp_path: Path, serve: Any
) -> None:
    """A node mirroring a hub checks the hub's signature and, inside it, the origin's under the
    keys of the hub's signed directory; bad relays are refused and the rest applied."""
    hub = Peer(tmp_path / "eu", "EU")
    pt, fr = Peer(tmp_path / "pt", "PT"), Peer(tmp_path / "fr", "FR")
    old_pt = keys.generate()
    hub.directory({"PT": [listed(pt.key), listed(old_pt, revoked_at="2021-01-01T00:00:00Z")]})

    good = pt.envelope(pt.payload("a", 1))
    hub.add(hub.relay(good))  # 1 accepted
    altered = json.loads(json.dumps(pt.envelope(pt.payload("b", 1))))
    altered["payload"]["body"]["title"] = "Mentorinh"
    hub.add(hub.relay(altered))  # 2 the origin's signature no longer matches
    hub.add(hub.relay(fr.envelope(fr.payload("c", 1))))  # 3 an origin the directory lacks
    hub.add(hub.relay(pt.envelope(pt.payload("d", 1)), version=2))  # 4 relay and entry differ
    hub.add(hub.relay(pt.envelope(pt.payload("e", 1), key=old_pt)))  # 5 revoked origin key
    hub.add(hub.relay(pt.envelope(pt.payload("f", 1))), key=keys.generate())  # 6 not the hub
    hub.add(hub.relay(pt.envelope(pt.payload("a", 2, BODY | {"title": "Mentoring, v2"}))))  # 7
    hub.add(hub.relay(pt.envelope(pt.payload("g", 1, None, op="withdraw"))))  # 8 tombstone
    hub.checkpoint()
    url = serve(hub)

    db, data = database.fresh_copy(), tmp_path / "fr-node"
    added = hub_cli(db, data, "mirror", "add", "--url", url, "--key", hub.key.public_b64)
    assert added.returncode == 0, added.stderr
    result = hub_cli(db, data, "mirror", "sync")
    assert "EU: 3 applied, 0 unchanged, 5 refused" in result.stdout, result.stdout + result.stderr
    held = {
        r: (v, w)
        for r, v, w in rows(db, "SELECT record_id, version, withdrawn FROM federated_record")
    }
    assert held == {"PT:a": (2, False), "PT:g": (1, True)}
    reasons = dict(rows(db, "SELECT seq, reason FROM sync_refusal WHERE seq IS NOT NULL"))
    assert "origin's envelope" in reasons[2] and "signature does not match" in reasons[2]
    assert "does not list" in reasons[3]
    assert "version differs" in reasons[4]
    assert "after its revocation" in reasons[5]
    assert "not enrolled" in reasons[6]
    # The mirror is no hub: it relays nothing, and only a hub's peers are pulled.
    assert rows(db, "SELECT count(*) FROM feed_entry") == [(0,)]
    assert rows(db, "SELECT origin, kind FROM peer ORDER BY origin") == [
        ("EU", "hub"),
        ("PT", "listed"),
    ]


def rotation(origin: str, old: keys.SigningKey, new: keys.SigningKey, at: str) -> dict[str, Any]:
    """A key-rotation announcement as `integra keys rotate` writes it."""
    statement = {
        "type": "key-rotation",
        "origin": origin,
        "previous": old.key_id,
        "key": new.key_id,
        "public_key": new.public_b64,
        "time": at,
    }
    return {
        "statement": statement,
        "signatures": [{"key": k.key_id, "sig": k.sign(canonical(statement))} for k in (old, new)],
    }


def test_the_hub_trusts_a_rotated_key_announced_under_the_old_one(
    database: Database, tmp_path: Path, serve: Any
) -> None:
    peer = Peer(tmp_path / "bg", "BG")
    old = peer.key
    new, impostor = keys.generate(), keys.generate()
    signed_at = datetime.strptime(NOW, "%Y-%m-%dT%H:%M:%SZ")  # when the peer's entries are
    rotated_at = (signed_at - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    before = (signed_at - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    forged = rotation("BG", impostor, impostor, rotated_at)
    forged["statement"]["previous"] = old.key_id  # claims to follow the old key, unsigned by it
    (peer.dir / "keys.json").write_text(
        json.dumps(
            {
                "origin": "BG",
                "keys": [
                    {"key_id": old.key_id, "public_key": old.public_b64, "announcement": None},
                    {
                        "key_id": new.key_id,
                        "public_key": new.public_b64,
                        "announcement": rotation("BG", old, new, rotated_at),
                    },
                    {
                        "key_id": impostor.key_id,
                        "public_key": impostor.public_b64,
                        "announcement": forged,
                    },
                ],
            }
        )
    )
    peer.add(peer.payload("a", 1, time=before))  # 1 the old key, before the rotation
    peer.add(peer.payload("b", 1), key=new)  # 2 the new key
    peer.add(peer.payload("c", 1))  # 3 the old key after the rotation
    peer.add(peer.payload("d", 1), key=impostor)  # 4 a key announced without the old one
    peer.key = new  # the checkpoint is signed with the current key
    peer.checkpoint()
    url = serve(peer)
    db, data = database.fresh_copy(), tmp_path / "hub"
    enrolled = hub_cli(
        db, data, "hub", "enrol", "--country", "BG", "--url", url, "--key", old.public_b64,
        "--auto-rotate",  # trusted without the operator's confirmation (test_revocation.py)
    )  # fmt: skip
    assert enrolled.returncode == 0, enrolled.stderr

    result = hub_cli(db, data, "hub", "sync")
    assert "BG: 2 applied, 0 unchanged, 2 refused" in result.stdout, result.stdout + result.stderr
    assert {r for (r,) in rows(db, "SELECT record_id FROM federated_record")} == {"BG:a", "BG:b"}
    reasons = dict(rows(db, "SELECT seq, reason FROM sync_refusal WHERE seq IS NOT NULL"))
    assert "outside the validity window" in reasons[3]
    assert "not enrolled" in reasons[4]
    trusted = dict(rows(db, "SELECT key_id, valid_until FROM peer_key"))
    assert set(trusted) == {old.key_id, new.key_id} and trusted[old.key_id] is not None
    [(action, detail)] = rows(db, "SELECT action, detail FROM audit_entry WHERE actor = 'sync'")
    assert action == "key_rotation_accepted" and old.key_id in str(detail)
