"""Where the schema is and where the code wants it, as alembic says it: `migrations` answers
both without alembic (every command asks, and alembic's run imports every model), so an
upgrade runs when, and only when, the database is behind."""

from pathlib import Path

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from node import migrations
from node.core.settings import sync_url
from tests.conftest import Database, migrate


def revisions(url: str) -> tuple[str | None, str | None]:
    """(ours, alembic's) current revision of the database at `url`."""
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as connection:
            ours = migrations.current_revision(connection)
            theirs = MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
    return ours, theirs


def test_the_head_is_alembics() -> None:
    script = ScriptDirectory.from_config(migrations.alembic_config())
    assert migrations.head_revision() == script.get_current_head() is not None


def test_a_database_never_migrated_is_at_no_revision(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    assert revisions(url) == (None, None)


def test_a_database_behind_is_brought_to_the_head(database: Database) -> None:
    head = migrations.head_revision()
    url = database.fresh_copy()
    assert revisions(url) == (head, head)
    script = ScriptDirectory.from_config(migrations.alembic_config())
    previous = script.get_revision(head).down_revision
    assert isinstance(previous, str)
    migrate(url, previous, down=True)
    assert revisions(url) == (previous, previous)
    migrations.upgrade(url)
    assert revisions(url) == (head, head)
    migrations.upgrade(url)  # already there: looked at only
    assert revisions(url) == (head, head)
