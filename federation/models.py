"""What a node keeps to publish its signed feed: its keys, the feed itself, and the records
the personal-data gate holds back."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Integer, String, Text, UniqueConstraint
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
