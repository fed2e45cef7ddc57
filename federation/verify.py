"""Offline verification of a record's envelope chain (`integra verify`).

Feed v2: the payload signs the body's hash and the body travels beside the envelope; it is
checked against that hash, or reported purged when its origin's signed redaction removed it.

An envelope is `{payload, key, sig}`: the signature covers the RFC 8785 form of the payload. A
hub's envelope may carry the origin's envelope inside its payload (`envelope`); each link of
the chain is checked against the keys given, so a record copied anywhere can be traced to the
node that signed it.

A key is valid for a window of the signer's sequence numbers: a rotation announcement (signed by
the old key and the new one, in a keys document) ends the old key's window at the seq it names
and starts the new one's after it; a hub's signed directory gives each node key's window and its
revocation (the seq after which the key signs nothing the hub accepts). The time an entry claims
decides nothing.
"""

import hashlib
from dataclasses import dataclass, replace
from typing import Any

from federation import keys
from federation.canonical import canonical


@dataclass(frozen=True)
class Link:
    signer: str
    key_id: str
    time: str
    record: str
    valid: bool
    reason: str


@dataclass(frozen=True)
class KnownKey:
    """A key given to `integra verify`, with the window of seqs it may sign in."""

    origin: str
    public_key: str
    from_seq: int | None = None
    until_seq: int | None = None
    revoked_seq: int | None = None


def _own_id(entry: Any) -> str:
    """The key id of a listed key, which must be derived from its public key."""
    public = str(entry.get("public_key", "")) if isinstance(entry, dict) else ""
    try:
        derived = keys.key_id_of(keys.unb64(public))
    except ValueError:
        derived = ""
    claimed = entry.get("key_id") if isinstance(entry, dict) else None
    if derived != claimed:
        raise ValueError(f"key {str(claimed)[:80]} does not match its public key")
    return derived


def _seq(value: Any) -> int | None:
    return value if type(value) is int and value >= 0 else None


def _narrowed(key: KnownKey, *, until: int | None = None, revoked: int | None = None) -> KnownKey:
    """The key with its window ended at `until`, or revoked at `revoked`; never widened."""
    if until is not None and (key.until_seq is None or until < key.until_seq):
        key = replace(key, until_seq=until)
    if revoked is not None and (key.revoked_seq is None or revoked < key.revoked_seq):
        key = replace(key, revoked_seq=revoked)
    return key


def _rotations(document: dict[str, Any], out: dict[str, KnownKey]) -> None:
    """Windows from the document's rotation announcements, each signed by both keys."""
    for entry in document["keys"]:
        announcement = entry.get("announcement") if isinstance(entry, dict) else None
        statement = announcement.get("statement") if isinstance(announcement, dict) else None
        if not isinstance(statement, dict) or _seq(statement.get("seq")) is None:
            continue
        previous, new = out.get(str(statement.get("previous"))), out.get(str(statement.get("key")))
        signed = announcement.get("signatures") if isinstance(announcement, dict) else None
        by = {s.get("key"): str(s.get("sig")) for s in signed or [] if isinstance(s, dict)}
        data = canonical(statement)
        if (
            previous is None
            or new is None
            or not keys.verify(previous.public_key, data, by.get(statement["previous"], ""))
            or not keys.verify(new.public_key, data, by.get(statement["key"], ""))
        ):
            continue
        seq: int = statement["seq"]
        out[statement["previous"]] = _narrowed(previous, until=seq)
        if new.from_seq is None or new.from_seq < seq + 1:
            out[statement["key"]] = replace(new, from_seq=seq + 1)


def known_keys(documents: list[Any]) -> dict[str, KnownKey]:
    """key id → its origin, public key and window, from `/federation/v1/keys` documents."""
    out: dict[str, KnownKey] = {}
    for document in documents:
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ValueError("a keys document is {origin, keys: [{key_id, public_key}, ...]}")
        for entry in document["keys"]:
            key_id = _own_id(entry)
            out[key_id] = KnownKey(str(document.get("origin", "?")), entry["public_key"])
    for document in documents:
        _rotations(document, out)
    return out


def apply_directory(document: Any, known: dict[str, KnownKey]) -> dict[str, KnownKey]:
    """The node keys of a hub's signed directory (`/federation/v1/directory`), with their
    windows and revocations, added to `known`; the directory must be signed by a hub key
    given (a keys document of the hub)."""
    if not isinstance(document, dict) or set(document) != {"directory", "key", "sig"}:
        raise ValueError("a directory is {directory, key, sig}")
    body, signer = document["directory"], known.get(str(document["key"]))
    if signer is None or not isinstance(body, dict) or body.get("origin") != signer.origin:
        raise ValueError("the directory is not signed by a key of its hub given with --keys")
    if not keys.verify(signer.public_key, canonical(body), str(document["sig"])):
        raise ValueError("the directory's signature does not match")
    out = dict(known)
    for node in body.get("nodes") or []:
        origin = str(node.get("origin", "?")) if isinstance(node, dict) else "?"
        for entry in node.get("keys") or [] if isinstance(node, dict) else []:
            key_id = _own_id(entry)
            listed = KnownKey(origin, entry["public_key"], _seq(entry.get("valid_from_seq")))
            listed = _narrowed(listed, until=_seq(entry.get("valid_until_seq")))
            bound = _seq(entry.get("revoked_seq"))
            if bound is None and entry.get("revoked_at") is not None:
                bound = 0  # revoked with no bound: it signs nothing
            mine = out.get(key_id)
            if mine is not None and mine.origin != origin:
                raise ValueError(f"the directory gives key {key_id} to {origin}, not {mine.origin}")
            base = mine or listed
            if mine is not None and listed.from_seq is not None:
                base = replace(base, from_seq=max(listed.from_seq, base.from_seq or 0))
            out[key_id] = _narrowed(base, until=listed.until_seq, revoked=bound)
    return out


ENVELOPE = {"payload", "key", "sig"}
BESIDE = {"body", "redacted"}  # what a v2 feed item carries beside its signed envelope


def envelope_of(document: Any) -> dict[str, Any]:
    """Accept an envelope, a feed item (v2: with its body beside, or the redaction marker
    that purged it), or a hub record that carries one (with its body beside, v2)."""
    if isinstance(document, dict) and isinstance(document.get("envelope"), dict):
        record = document
        document = dict(record["envelope"])
        payload = document.get("payload")
        if isinstance(payload, dict) and "v" in payload:
            document["body"] = record.get("body")
            if record.get("redacted"):
                document["redacted"] = record["redacted"]
    if (
        not isinstance(document, dict)
        or not ENVELOPE <= set(document)
        or not set(document) <= ENVELOPE | BESIDE
    ):
        raise ValueError("not an envelope {payload, key, sig} nor a record carrying one")
    return document


def body_check(envelope: dict[str, Any]) -> tuple[bool, str] | None:
    """(Feed v2) Whether the body beside an envelope is the one its payload signs the hash of
    (every link of a relay signs the same hash), or that a redaction purged it; None for a
    v1 envelope (its body is inside what is signed)."""
    payload = envelope["payload"]
    if not isinstance(payload, dict) or "v" not in payload:
        return None
    hashes = []
    current: Any = envelope
    while isinstance(current, dict) and isinstance(current.get("payload"), dict):
        hashes.append(current["payload"].get("body_hash"))
        current = current["payload"].get("envelope")
    if len(set(map(str, hashes))) != 1:
        return False, "the links of the chain sign different body hashes"
    marker = envelope.get("redacted")
    if marker is not None:
        by = marker.get("by_seq", "?") if isinstance(marker, dict) else "?"
        why = marker.get("reason", "?") if isinstance(marker, dict) else "?"
        return True, f"purged by its origin's signed redaction (entry {by}: {why})"
    if "body" not in envelope:  # the envelope alone: its signatures are what is checked
        return True, "not given (the payload signs its hash)"
    body = envelope["body"]
    if hashes[0] is None:
        return (body is None, "no body" if body is None else "a body where none is signed")
    if body is None:
        return False, "the body is missing"
    if hashlib.sha256(canonical(body)).hexdigest() != hashes[0]:
        return False, "the body does not match the hash its payload signs"
    return True, "matches the hash its payload signs"


def window_problem(key_id: str, key: KnownKey, seq: Any) -> str | None:
    """Why `key` cannot have signed entry `seq`, or None."""
    bounded = key.revoked_seq is not None or key.from_seq is not None or key.until_seq is not None
    if type(seq) is not int:
        return "the entry has no sequence number to check the key's window" if bounded else None
    if key.revoked_seq is not None and seq > key.revoked_seq:
        return f"signed by key {key_id} after its revocation (at seq {key.revoked_seq})"
    if (key.from_seq is not None and seq < key.from_seq) or (
        key.until_seq is not None and seq > key.until_seq
    ):
        window = f"{key.from_seq or 1}–{key.until_seq if key.until_seq is not None else ''}"
        return f"signed outside the validity window of key {key_id} (entries {window})"
    return None


def _link(current: dict[str, Any], known: dict[str, KnownKey]) -> Link:
    payload = current["payload"]
    key_id = str(current["key"])
    origin = str(payload.get("origin", "?")) if isinstance(payload, dict) else "?"
    record = str(payload.get("id", "?")) if isinstance(payload, dict) else "?"
    time = str(payload.get("time", "?")) if isinstance(payload, dict) else "?"
    key = known.get(key_id)
    if key is None:
        return Link(origin, key_id, time, record, False, "unknown key")
    if key.origin != origin:
        return Link(
            origin, key_id, time, record, False, f"the key belongs to {key.origin}, not {origin}"
        )
    if not keys.verify(key.public_key, canonical(payload), str(current["sig"])):
        return Link(origin, key_id, time, record, False, "signature does not match")
    problem = window_problem(key_id, key, payload.get("seq") if isinstance(payload, dict) else None)
    if problem:
        return Link(origin, key_id, time, record, False, problem)
    return Link(origin, key_id, time, record, True, "valid")


def verify_chain(envelope: dict[str, Any], known: dict[str, KnownKey]) -> list[Link]:
    links = []
    current: Any = envelope
    while isinstance(current, dict) and ENVELOPE <= set(current) <= ENVELOPE | BESIDE:
        links.append(_link(current, known))
        payload = current["payload"]
        current = payload.get("envelope") if isinstance(payload, dict) else None
    return links
