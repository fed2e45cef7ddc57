"""Alembic, driven from code: `integra db upgrade`, `integra serve` and the tests use it.

Most runs find the database already at the newest schema (every command migrates first): that is
answered from the version table and the version files' `revision` lines, without alembic, whose
run imports every domain's models (about a second of CPU a process), nor its script directory.
"""

import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, create_engine, inspect, text
from sqlalchemy.engine import make_url

from node.core.settings import sync_url

if TYPE_CHECKING:
    from alembic.config import Config

SCRIPT_LOCATION = Path(__file__).parent / "alembic"
VERSION_TABLE = "alembic_version"
# `revision: str = "0026"` and `down_revision: str | None = "0025"` (or a tuple, for a merge)
_REVISION_LINE = re.compile(r"^(down_)?revision\b[^=\n]*=(.*)$", re.MULTILINE)
_QUOTED = re.compile(r"""["']([^"']+)["']""")


def alembic_config(url: str | None = None) -> "Config":
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.set_main_option("file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(slug)s")
    if url is not None:
        config.set_main_option("sqlalchemy.url", sync_url(url).replace("%", "%%"))
    return config


def ensure_sqlite_dir(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def upgrade(url: str) -> None:
    """Bring the database at ``url`` to the newest schema. Safe to run again: a database
    already there is only looked at."""
    ensure_sqlite_dir(url)
    engine = create_engine(sync_url(url))
    try:
        with engine.begin() as connection:
            head = head_revision()
            if head is not None and current_revision(connection) == head:
                return
            from alembic import command

            config = alembic_config(url)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        engine.dispose()


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at (None: never migrated), as alembic's
    `MigrationContext.get_current_revision` reads it."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    found = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    if len(found) > 1:
        raise RuntimeError(f"the {VERSION_TABLE} table names more than one revision: {found}")
    return str(found[0]) if found else None


@cache
def head_revision() -> str | None:
    """The newest revision, as alembic's `ScriptDirectory.get_current_head` says it (the tests
    check that they agree), read from the version files' `revision` and `down_revision`."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (SCRIPT_LOCATION / "versions").glob("*.py"):
        for down, value in _REVISION_LINE.findall(path.read_text(encoding="utf-8")):
            (parents if down else revisions).update(_QUOTED.findall(value))
    heads = revisions - parents
    if len(heads) > 1:
        raise RuntimeError(f"the migrations have several heads: {sorted(heads)}")
    return heads.pop() if heads else None
