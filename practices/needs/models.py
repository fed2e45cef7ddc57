"""The table of needs (registered on the same metadata as the practices)."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from node.core.db import Base, IdMixin, TimestampMixin


class Need(IdMixin, TimestampMixin, Base):
    """A need a practitioner or an agency recorded for an organisation of the registry: its
    kind, the vocabulary terms it concerns, and free text. The text may name people: it never
    leaves the node (only counts of kind and terms may, `practices.needs.shareable_counts`)."""

    __tablename__ = "need"

    organisation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(30), index=True)
    target_groups: Mapped[list[Any]] = mapped_column(default=list)
    settings: Mapped[list[Any]] = mapped_column(default=list)
    areas: Mapped[list[Any]] = mapped_column(default=list)
    intervention_types: Mapped[list[Any]] = mapped_column(default=list)
    # Personal data may be in it: stays on this node, shown to signed-in users who may see it.
    description: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="open", index=True)
    status_note: Mapped[str | None] = mapped_column(Text)
    addressed_at: Mapped[datetime | None]
    # Its counts travel to the hub unless the recorder keeps it national.
    shared: Mapped[bool] = mapped_column(default=True)
    recorded_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), index=True
    )
    recorded_by_label: Mapped[str] = mapped_column(String(320))
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}
