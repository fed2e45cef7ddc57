"""Search over published practices: one port (`port.py`), several adapters."""

import sqlalchemy
from sqlalchemy.orm import Session

from node.core.settings import Settings
from practices.search.port import SearchBackend


def make_backend(settings: Settings) -> SearchBackend:
    if settings.search_backend == "meilisearch":
        from practices.search.meili import MeiliSearch

        return MeiliSearch(settings.meili_url or "", settings.meili_key)
    from practices.search.sql import SqlSearch

    return SqlSearch()


def compact(session: Session) -> None:
    """After a purge: no trace of removed documents left in the index's own storage. SQLite's
    full-text index (FTS5) keeps a removed document's words in its segments until they are
    merged: merge them all. PostgreSQL keeps nothing readable; Meilisearch deletes at once."""
    if session.get_bind().dialect.name == "sqlite":
        # sqlalchemy.text: `text` here is this package's module of that name once imported
        optimize = "INSERT INTO practice_fts(practice_fts) VALUES ('optimize')"
        session.execute(sqlalchemy.text(optimize))
