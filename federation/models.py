"""What a node keeps to publish its signed feed: its keys, the feed itself, and the records
the personal-data gate holds back."""

import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from node.core.db import Base, utcnow


class NodeKey(Base):
    """A signing key of this node. The private half is in a file; this is the public half."""

    __tablename__ = "node_key"

    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    public_key: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    retired_at: Mapped[datetime | None]
    # The rotation announcement that introduced this key, signed by the old and the new key.
    announcement: Mapped[dict[str, Any] | None]


class FeedEntry(Base):
    """One signed entry of this node's append-only feed; `payload` is the exact signed text.

    A v2 entry's payload commits to its body's hash, and the body is kept beside it (`body`,
    canonical JSON), so a signed redaction can purge it (`redacted`: the marker) while the
    entry still verifies. A purged v1 entry (the body inside its signed text) keeps only its
    Merkle leaf (`leaf`) and the marker: `payload` is then empty."""

    __tablename__ = "feed_entry"

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    record_type: Mapped[str] = mapped_column(String(20))
    record_id: Mapped[str] = mapped_column(String(80), index=True)
    version: Mapped[int]
    op: Mapped[str] = mapped_column(String(10))
    payload: Mapped[str] = mapped_column(Text)
    body_hash: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    body: Mapped[str | None] = mapped_column(Text)
    leaf: Mapped[str | None] = mapped_column(String(64))
    redacted: Mapped[str | None] = mapped_column(Text)
    # The scope its payload signs (a relay's: the origin's): a `network` entry is served whole
    # only to an enrolled peer that signs its request, and without its body to anyone else.
    scope: Mapped[str] = mapped_column(String(10), default="public", server_default="public")


class FeedState(Base):
    """The feed's size and Merkle frontier, kept with every append so a checkpoint costs
    O(log n) instead of reading the whole log."""

    __tablename__ = "feed_state"

    id: Mapped[int] = mapped_column(primary_key=True, default=1)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    frontier: Mapped[list[Any]] = mapped_column(default=list)


class GateHold(Base):
    """A record the personal-data gate kept from the feed, with what it found and where."""

    __tablename__ = "gate_hold"
    __table_args__ = (UniqueConstraint("record_type", "record_id", "version"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    record_type: Mapped[str] = mapped_column(String(20))
    record_id: Mapped[uuid.UUID] = mapped_column(index=True)
    version: Mapped[int]
    hits: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(20), default="held", index=True)
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(320))
    justification: Mapped[str | None] = mapped_column(Text)


# --- the hub's side -----------------------------------------------------------------------


PEER_NODE = "node"  # a node the hub enrolled and pulls: it signs its own records
PEER_HUB = "hub"  # a hub this node mirrors: it relays the records of every enrolled node
PEER_LISTED = "listed"  # a node known through a mirrored hub's directory: keys only, not pulled
# A hub this node lets read its `network` entries (`integra hub trust`) without mirroring it.
PEER_READER = "reader"
NOT_PULLED = (PEER_LISTED, PEER_READER)


class Peer(Base):
    """A feed this program trusts: a node the hub has enrolled (its country is the origin it may
    speak for), a hub a node mirrors, or a node listed in that hub's signed directory."""

    __tablename__ = "peer"

    id: Mapped[int] = mapped_column(primary_key=True)
    origin: Mapped[str] = mapped_column(String(2), unique=True)
    kind: Mapped[str] = mapped_column(String(10), default=PEER_NODE, server_default=PEER_NODE)
    base_url: Mapped[str] = mapped_column(String(300))
    enrolled_at: Mapped[datetime] = mapped_column(default=utcnow)
    active: Mapped[bool] = mapped_column(default=True)
    # Trust a key rotation this node announces (signed by its old key and the new one) without
    # the operator's confirmation of the new key's fingerprint; set at enrolment.
    auto_rotate: Mapped[bool] = mapped_column(default=False, server_default=false())


class PeerKey(Base):
    """A public key a peer signs with, trusted within its validity window.

    The window is counted in the sequence numbers of the feed the key signs (the peer's own,
    for a node; the origin's, for a node listed in a mirrored hub's directory), never in a time
    the signer writes: a signer chooses its times, not what this program has already seen."""

    __tablename__ = "peer_key"

    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    peer_id: Mapped[int] = mapped_column(ForeignKey("peer.id", ondelete="CASCADE"), index=True)
    public_key: Mapped[str] = mapped_column(String(64))
    # Signing times a rotation announced: a further restriction only, never a widening.
    valid_from: Mapped[datetime | None]
    valid_until: Mapped[datetime | None]
    # The first and the last entry (seq) this key may sign; None: no bound. An enrolled key is
    # valid from the entry after those seen at its enrolment; a rotated one from the seq its
    # rotation names, and the previous key until then.
    valid_from_seq: Mapped[int | None] = mapped_column(BigInteger)
    valid_until_seq: Mapped[int | None] = mapped_column(BigInteger)
    # Revoked: entries this key signed after `revoked_seq` (what this program had accepted of
    # the peer's feed when the operator revoked it; `revoked_size`, its checkpoint's size) are
    # refused, whatever time they claim. `revoked_at`: when the operator revoked it (this
    # program's clock), for the record.
    revoked_at: Mapped[datetime | None]
    revoked_seq: Mapped[int | None] = mapped_column(BigInteger)
    revoked_size: Mapped[int | None] = mapped_column(BigInteger)
    # The key whose rotation announcement introduced this one (None: enrolled by an operator,
    # or listed by a mirrored hub); revoking that key revokes this one at the same bound.
    introduced_by: Mapped[str | None] = mapped_column(String(64))
    # A rotation that waits for the operator's confirmation of this key's fingerprint: until
    # then the key signs nothing this program accepts.
    awaiting_confirmation: Mapped[bool] = mapped_column(default=False, server_default=false())


class PeerSync(Base):
    """Where the hub stands with a peer's feed; written in the same transaction as the records."""

    __tablename__ = "peer_sync"

    peer_id: Mapped[int] = mapped_column(
        ForeignKey("peer.id", ondelete="CASCADE"), primary_key=True
    )
    cursor: Mapped[int] = mapped_column(BigInteger, default=0)
    checkpoint_size: Mapped[int] = mapped_column(BigInteger, default=0)
    checkpoint_root: Mapped[str | None] = mapped_column(String(64))
    # The Merkle frontier of every entry received (refused ones included), to check the next
    # checkpoint against; None once an unreadable entry put the root beyond reach.
    frontier: Mapped[list[Any] | None] = mapped_column(JSON(none_as_null=True), default=list)
    last_attempt_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    failures: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    running_since: Mapped[datetime | None]
    # The signing time of the last checkpoint accepted (never later than this clock then): a
    # checkpoint signed before it is a replay or a held-back answer.
    checkpoint_time: Mapped[datetime | None]
    # Since when, and why, the peer's checkpoint is stale (older than the last accepted one, or
    # than INTEGRA_PEER_FRESHNESS); None once a fresh one is accepted.
    stale_since: Mapped[datetime | None]
    stale_reason: Mapped[str | None] = mapped_column(Text)


RELAY_HEAD = '{"envelope":'
RELAY_REST = ',"id":'
V2_HEAD = '{"body_hash":'  # a v2 payload's first key (a relay's too: "body_hash" < "envelope")


def relayed_envelope(payload: str) -> str:
    """The origin's envelope inside a hub's relay entry, byte for byte: the canonical payload is
    `{"envelope":<envelope>,"id":…}` ("envelope" sorts first, "id" next), or in v2
    `{"body_hash":<hex or null>,"envelope":<envelope>,"id":…}`, and the rest of it, after the
    envelope, holds no unescaped quote but those of its own keys and values."""
    if payload.startswith(V2_HEAD):
        head = payload.find(',"envelope":', len(V2_HEAD))
        if head < 0 or head > len(V2_HEAD) + 66:
            raise ValueError("not a relay entry")
        return payload[head + len(',"envelope":') : payload.rindex(RELAY_REST)]
    if not payload.startswith(RELAY_HEAD):
        raise ValueError("not a relay entry")
    return payload[len(RELAY_HEAD) : payload.rindex(RELAY_REST)]


class FederatedRecord(Base):
    """A record the hub accepted, with the origin's signed envelope exactly as received."""

    __tablename__ = "federated_record"

    record_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    origin: Mapped[str] = mapped_column(String(2), index=True)
    record_type: Mapped[str] = mapped_column(String(20))
    version: Mapped[int]
    withdrawn: Mapped[bool] = mapped_column(default=False)
    body_hash: Mapped[str] = mapped_column(String(64))
    # The origin's signed envelope, exactly as received (v1: the body inside it; v2: without
    # it, the body in `stored_body`). A hub stores it once, in the entry of its own feed that
    # relays this version (`relay_seq`, the v2 body beside it there), and not here (None): see
    # `signed_envelope`.
    envelope: Mapped[str | None] = mapped_column(Text)
    stored_body: Mapped[str | None] = mapped_column(Text)
    # The redaction marker once the origin's signed redaction purged this version's body.
    redacted: Mapped[str | None] = mapped_column(Text)
    relay_seq: Mapped[int | None] = mapped_column(BigInteger)
    relay: Mapped[FeedEntry | None] = relationship(
        primaryjoin="foreign(FederatedRecord.relay_seq) == FeedEntry.seq",
        lazy="joined",
        viewonly=True,
    )
    origin_seq: Mapped[int] = mapped_column(BigInteger)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The scope the origin signed: `network` records are shown to signed-in readers only.
    scope: Mapped[str] = mapped_column(String(10), default="public", server_default="public")
    # The record's id in the search index (derived from record_id, which is not a UUID).
    search_id: Mapped[uuid.UUID | None] = mapped_column(unique=True)
    # False from the moment the import changes the record until the search index has it.
    indexed: Mapped[bool] = mapped_column(default=False, server_default=true())

    @property
    def signed_envelope(self) -> str:
        """The origin's signed envelope, exactly as received, wherever it is stored (for a v1
        envelope whose body a redaction purged: the redaction marker)."""
        if self.envelope is not None:
            return self.envelope
        if self.relay is None:
            raise LookupError(f"the relay entry {self.relay_seq} of {self.record_id} is missing")
        if not self.relay.payload:  # a purged v1 relay: nothing of it is kept
            return json.dumps({"redacted": json.loads(self.relay.redacted or "{}")})
        return relayed_envelope(self.relay.payload)

    @property
    def body(self) -> dict[str, Any] | None:
        """The record's body (None for a withdrawal, a signed tombstone, or a purged body): v1
        in the envelope, v2 beside it, here or (on a hub) in the relay entry."""
        if self.withdrawn or self.redacted is not None:
            return None
        if self.stored_body is not None:
            body = json.loads(self.stored_body)
        elif self.envelope is None and self.relay is not None and self.relay.body is not None:
            body = json.loads(self.relay.body)
        else:
            body = json.loads(self.signed_envelope).get("payload", {}).get("body")
        return body if isinstance(body, dict) else None

    __table_args__ = (
        Index(
            "ix_federated_record_pending",
            "record_id",
            sqlite_where=text("NOT indexed"),
            postgresql_where=text("NOT indexed"),
        ),
    )


class PeerNonce(Base):
    """A signed request of a peer already answered (its key and nonce), kept while its signing
    time is within the window a request is accepted in: the same request again is a replay."""

    __tablename__ = "peer_nonce"

    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(index=True)


class SyncRefusal(Base):
    """An entry the hub refused, and why: every one is kept, not the first few."""

    __tablename__ = "sync_refusal"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    peer_id: Mapped[int] = mapped_column(ForeignKey("peer.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int | None] = mapped_column(BigInteger)
    record_id: Mapped[str | None] = mapped_column(String(80))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)
