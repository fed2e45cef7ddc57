"""Where a text is in a database as stored: the search the privacy and erasure tests make to
show that an erased or withdrawn text is nowhere, not merely hidden from the API."""

from collections.abc import Callable, Iterable
from pathlib import Path

from sqlalchemy import create_engine, text

from node.core.settings import sync_url

# Every PostgreSQL column that can hold text: strings, JSON, arrays, full-text vectors.
TEXT_TYPES = (
    "'text', 'character varying', 'character', 'json', 'jsonb', 'tsvector', 'ARRAY', 'USER-DEFINED'"
)


def raw_traces(
    db: str,
    needles: Iterable[str],
    *,
    fold: Callable[[str], str] | None = None,
    vacuum: bool = False,
) -> list[str]:
    """Each needle (as written, lower-cased, and ``fold``-ed when given) found in ``db``:
    (SQLite) in the bytes of its files, the write-ahead log and its index included, compared
    as written and lower-cased, after VACUUM when ``vacuum`` (only for a database nobody
    serves); (PostgreSQL) in every column of every table that holds text."""
    forms = {
        needle: sorted({needle, needle.lower()} | ({fold(needle)} if fold else set()))
        for needle in needles
    }
    if db.startswith("sqlite"):
        return _in_files(db, forms, vacuum)
    engine = create_engine(sync_url(db))
    found = []
    with engine.connect() as conn:
        columns = conn.execute(
            text(
                "SELECT table_name, column_name FROM information_schema.columns"
                f" WHERE table_schema = 'public' AND data_type IN ({TEXT_TYPES})"
            )
        ).all()
        for table, column in columns:
            for needle, variants in forms.items():
                where = " OR ".join(
                    f'strpos("{column}"::text, :f{i}) > 0'
                    f' OR strpos(lower("{column}"::text), :f{i}) > 0'
                    for i in range(len(variants))
                )
                params = {f"f{i}": form for i, form in enumerate(variants)}
                if conn.scalar(text(f'SELECT count(*) FROM "{table}" WHERE {where}'), params):
                    found.append(f"{table}.{column}: {needle}")
    engine.dispose()
    return found


def _in_files(db: str, forms: dict[str, list[str]], vacuum: bool) -> list[str]:
    path = Path(db.removeprefix("sqlite:///"))
    if vacuum:
        engine = create_engine(db)
        with engine.connect() as conn:
            conn.exec_driver_sql("VACUUM")
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()
    found = []
    for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        data = file.read_bytes() if file.exists() else b""
        lowered = data.lower()
        for variants in forms.values():
            for form in variants:
                if form.encode() in data or form.encode() in lowered:
                    found.append(f"{file.name}: {form}")
    return found
