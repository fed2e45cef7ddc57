from alembic import context
from sqlalchemy import create_engine

import federation.models  # noqa: F401
import node.core.models  # noqa: F401 - registers the tables on the metadata
import practices.models
import practices.search.models
import practices.study_visits.models  # noqa: F401
import registry.models  # noqa: F401
from node.core.db import Base

target_metadata = Base.metadata


def _include_object(obj: object, name: str | None, type_: str, reflected: bool, _: object) -> bool:
    # The full-text parts are made by hand in the migrations (FTS5 tables and their shadow
    # tables on SQLite, the generated tsvector column on PostgreSQL): autogenerate leaves them.
    return not (name or "").startswith("practice_fts") and not (type_ == "column" and name == "tsv")


def _configure_and_run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
        include_object=_include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _configure_and_run(connection)
else:
    engine = create_engine(context.config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as conn:
        _configure_and_run(conn)
    engine.dispose()
