"""The search index, kept in the node's own database by the SQL adapter.

`search_document` gives each indexed record a dense integer number (the FTS5 rowid, and the bit
position in the in-memory facet bitsets) and a change sequence, so that every process can bring
its facet cache up to date by reading only what changed.
"""

import uuid
from datetime import date

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from node.core.db import Base


class SearchDocument(Base):
    __tablename__ = "search_document"

    doc_no: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    record_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    active: Mapped[bool] = mapped_column(default=True)
    seq: Mapped[int] = mapped_column(BigInteger, index=True)
    sort_date: Mapped[date | None]
    title: Mapped[str] = mapped_column(String(300), default="")
    # Folded, variant-normalised text: what the full-text index sees.
    title_norm: Mapped[str] = mapped_column(Text, default="")
    body_norm: Mapped[str] = mapped_column(Text, default="")


class SearchFacet(Base):
    __tablename__ = "search_facet"
    # each facet value's documents in order: the facet cache's load reads this index alone
    # (migration 0023; 0025 dropped its head, (facet, value), kept twice on every write)
    __table_args__ = (Index("ix_search_facet_documents", "facet", "value", "doc_no"),)

    doc_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    facet: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(String(60), primary_key=True)


class SearchState(Base):
    """One row: the sequence number of the last change to the index, and the analysis its
    text was made with."""

    __tablename__ = "search_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    # The analysis the indexed text was made with (`analysis.ANALYSIS_VERSION`): another one
    # at start-up means a reindex.
    analysis_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
