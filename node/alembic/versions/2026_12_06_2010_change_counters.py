"""Change counters (issue 19): a number per group of tables that every change to them raises.

A list or search answer is kept in memory while the tables it shows are unchanged
(`node.core.answers`): before answering, a request reads its group's counter (one indexed
row) and serves the answer kept for that number, if any. The counters are raised by the
database itself, in the writing transaction, whatever writes (the API, the CLI, an import, a
migration, a restore): SQLite with row triggers, PostgreSQL with statement triggers (those on
practices read the rows the statement changed). A reader that sees a new number sees the
change with it (the counter row is part of the same commit); one that read the number first
and the rows after a commit keeps the newer rows under the older number, which the next
request no longer asks for.

- `registry`: organisations, their identifiers and their terms (the organisation list);
- `pool`: the EU pool's records and the feed entries that may hold their bodies (the EU
  search; a redaction purges a body there, and the next answer must not show it);
- `practices`: practices that are or were published (a draft saved changes no search answer;
  a search answer is also keyed by the index's own sequence number,
  `search_state.seq`, which every change to the index moves: counting it here as well would
  make an indexing job and a publish take the two rows' locks in opposite orders).

On PostgreSQL a writer holds its group's counter row until it commits: the writers of one
group take turns at their commit, which registry and practice writes (an editor's save, an
import) can afford.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06 20:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Every change counts: registry and pool writes are an editor's save or a sync round.
COUNTED = {
    "registry": ("organisation", "organisation_identifier", "organisation_term"),
    "pool": ("federated_record", "feed_entry"),
}
OPERATIONS = ("INSERT", "UPDATE", "DELETE")
# A practice counts when it is or was published: a draft saved changes no search answer.
PUBLISHED = {
    "INSERT": "NEW.status = 'published'",
    "UPDATE": "OLD.status = 'published' OR NEW.status = 'published'",
    "DELETE": "OLD.status = 'published'",
}
# PostgreSQL: one trigger per statement, which reads the rows it changed (transition tables,
# one event each).
PG_TRANSITIONS = {
    "INSERT": ("REFERENCING NEW TABLE AS changed", "changed"),
    "UPDATE": ("REFERENCING OLD TABLE AS before NEW TABLE AS changed", "before, changed"),
    "DELETE": ("REFERENCING OLD TABLE AS before", "before"),
}


def upgrade() -> None:
    op.create_table(
        "change_counter",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_change_counter")),
    )
    op.bulk_insert(
        sa.table("change_counter", sa.column("name", sa.String), sa.column("value", sa.BigInteger)),
        [{"name": name, "value": 0} for name in ("registry", "practices", "pool")],
    )
    if op.get_bind().dialect.name == "postgresql":
        _postgres_triggers()
        return
    for name, tables in COUNTED.items():
        for table in tables:
            for operation in OPERATIONS:
                op.execute(
                    f"CREATE TRIGGER tr_{table}_{operation.lower()}_changes AFTER {operation} "
                    f"ON {table} BEGIN {_RAISE % name}; END"
                )
    for operation, condition in PUBLISHED.items():
        op.execute(
            f"CREATE TRIGGER tr_practice_{operation.lower()}_changes AFTER {operation} "
            f"ON practice WHEN {condition} BEGIN {_RAISE % 'practices'}; END"
        )


_RAISE = "UPDATE change_counter SET value = value + 1 WHERE name = '%s'"


def _postgres_triggers() -> None:
    op.execute(
        "CREATE FUNCTION integra_count_change() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "UPDATE change_counter SET value = value + 1 WHERE name = TG_ARGV[0]; "
        "RETURN NULL; END $$"
    )
    for name, tables in COUNTED.items():
        for table in tables:
            op.execute(
                f"CREATE TRIGGER tr_{table}_changes AFTER INSERT OR UPDATE OR DELETE OR "
                f"TRUNCATE ON {table} FOR EACH STATEMENT "
                f"EXECUTE FUNCTION integra_count_change('{name}')"
            )
    # Each event's function reads only the transition tables its trigger defines.
    for operation, (referencing, transitions) in PG_TRANSITIONS.items():
        condition = " OR ".join(
            f"EXISTS (SELECT 1 FROM {t.strip()} WHERE status = 'published')"
            for t in transitions.split(",")
        )
        op.execute(
            f"CREATE FUNCTION integra_count_published_{operation.lower()}() RETURNS trigger "
            f"LANGUAGE plpgsql AS $$ BEGIN IF {condition} THEN {_RAISE % 'practices'}; "
            "END IF; RETURN NULL; END $$"
        )
        op.execute(
            f"CREATE TRIGGER tr_practice_{operation.lower()}_changes AFTER {operation} "
            f"ON practice {referencing} FOR EACH STATEMENT "
            f"EXECUTE FUNCTION integra_count_published_{operation.lower()}()"
        )
    op.execute(
        "CREATE TRIGGER tr_practice_truncate_changes AFTER TRUNCATE ON practice "
        "FOR EACH STATEMENT EXECUTE FUNCTION integra_count_change('practices')"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in [t for tables in COUNTED.values() for t in tables]:
            op.execute(f"DROP TRIGGER tr_{table}_changes ON {table}")
        for operation in (*OPERATIONS, "TRUNCATE"):
            op.execute(f"DROP TRIGGER tr_practice_{operation.lower()}_changes ON practice")
        for operation in OPERATIONS:
            op.execute(f"DROP FUNCTION integra_count_published_{operation.lower()}()")
        op.execute("DROP FUNCTION integra_count_change()")
    else:
        for table in [*(t for tables in COUNTED.values() for t in tables), "practice"]:
            for operation in OPERATIONS:
                op.execute(f"DROP TRIGGER tr_{table}_{operation.lower()}_changes")
    op.drop_table("change_counter")
