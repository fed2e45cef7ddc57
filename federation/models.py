"""What a node keeps to publish its signed feed: its keys, the feed itself, and the records
the personal-data gate holds back."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from node.db import Base, utcnow


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
    """One signed entry of this node's append-only feed; `payload` is the exact signed text."""

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


class Peer(Base):
    """A node the hub has enrolled: its country (the origin it may speak for) and its URL."""

    __tablename__ = "peer"

    id: Mapped[int] = mapped_column(primary_key=True)
    origin: Mapped[str] = mapped_column(String(2), unique=True)
    base_url: Mapped[str] = mapped_column(String(300))
    enrolled_at: Mapped[datetime] = mapped_column(default=utcnow)
    active: Mapped[bool] = mapped_column(default=True)


class PeerKey(Base):
    """A public key a peer signs with, trusted within its validity window."""

    __tablename__ = "peer_key"

    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    peer_id: Mapped[int] = mapped_column(ForeignKey("peer.id", ondelete="CASCADE"), index=True)
    public_key: Mapped[str] = mapped_column(String(64))
    valid_from: Mapped[datetime] = mapped_column(default=utcnow)
    valid_until: Mapped[datetime | None]
    # Entries this key signed after this moment are refused (earlier ones stay trusted).
    revoked_at: Mapped[datetime | None]


class PeerSync(Base):
    """Where the hub stands with a peer's feed; written in the same transaction as the records."""

    __tablename__ = "peer_sync"

    peer_id: Mapped[int] = mapped_column(
        ForeignKey("peer.id", ondelete="CASCADE"), primary_key=True
    )
    cursor: Mapped[int] = mapped_column(BigInteger, default=0)
    checkpoint_size: Mapped[int] = mapped_column(BigInteger, default=0)
    checkpoint_root: Mapped[str | None] = mapped_column(String(64))
    last_attempt_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    failures: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    running_since: Mapped[datetime | None]


class PeerLeaf(Base):
    """The Merkle leaf hash of every entry received from a peer, refused ones included, so the
    hub can recompute the root a checkpoint signs and notice rewritten history."""

    __tablename__ = "peer_leaf"

    peer_id: Mapped[int] = mapped_column(
        ForeignKey("peer.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    leaf: Mapped[str] = mapped_column(String(64))


class FederatedRecord(Base):
    """A record the hub accepted, with the origin's signed envelope exactly as received."""

    __tablename__ = "federated_record"

    record_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    origin: Mapped[str] = mapped_column(String(2), index=True)
    record_type: Mapped[str] = mapped_column(String(20))
    version: Mapped[int]
    withdrawn: Mapped[bool] = mapped_column(default=False)
    # A withdrawn record keeps no body: SQL NULL, not JSON null.
    body: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    body_hash: Mapped[str] = mapped_column(String(64))
    envelope: Mapped[str] = mapped_column(Text)
    origin_seq: Mapped[int] = mapped_column(BigInteger)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The record's id in the search index (derived from record_id, which is not a UUID).
    search_id: Mapped[uuid.UUID | None] = mapped_column(unique=True)


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
