"""Offline verification of a record's envelope chain (`integra verify`).

An envelope is `{payload, key, sig}`: the signature covers the RFC 8785 form of the payload. A
hub's envelope may carry the origin's envelope inside its payload (`envelope`); each link of
the chain is checked against the keys given, so a record copied anywhere can be traced to the
node that signed it.
"""

from dataclasses import dataclass
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


def known_keys(documents: list[Any]) -> dict[str, tuple[str, str]]:
    """key id → (origin, public key), from `/federation/v1/keys` documents."""
    out: dict[str, tuple[str, str]] = {}
    for document in documents:
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ValueError("a keys document is {origin, keys: [{key_id, public_key}, ...]}")
        for entry in document["keys"]:
            public = str(entry.get("public_key", ""))
            try:
                derived = keys.key_id_of(keys.unb64(public))
            except ValueError:
                derived = ""
            if derived != entry.get("key_id"):
                raise ValueError(f"key {entry.get('key_id')} does not match its public key")
            out[derived] = (str(document.get("origin", "?")), public)
    return out


def envelope_of(document: Any) -> dict[str, Any]:
    """Accept an envelope, or a hub record that carries one."""
    if isinstance(document, dict) and isinstance(document.get("envelope"), dict):
        document = document["envelope"]
    if not isinstance(document, dict) or set(document) != {"payload", "key", "sig"}:
        raise ValueError("not an envelope {payload, key, sig} nor a record carrying one")
    return document


def verify_chain(envelope: dict[str, Any], known: dict[str, tuple[str, str]]) -> list[Link]:
    links = []
    current: Any = envelope
    while isinstance(current, dict) and set(current) == {"payload", "key", "sig"}:
        payload = current["payload"]
        key_id = str(current["key"])
        origin = str(payload.get("origin", "?")) if isinstance(payload, dict) else "?"
        record = str(payload.get("id", "?")) if isinstance(payload, dict) else "?"
        time = str(payload.get("time", "?")) if isinstance(payload, dict) else "?"
        if key_id not in known:
            links.append(Link(origin, key_id, time, record, False, "unknown key"))
        elif known[key_id][0] != origin:
            links.append(
                Link(
                    origin,
                    key_id,
                    time,
                    record,
                    False,
                    f"the key belongs to {known[key_id][0]}, not {origin}",
                )
            )
        elif not keys.verify(known[key_id][1], canonical(payload), str(current["sig"])):
            links.append(Link(origin, key_id, time, record, False, "signature does not match"))
        else:
            links.append(Link(origin, key_id, time, record, True, "valid"))
        current = payload.get("envelope") if isinstance(payload, dict) else None
    return links
