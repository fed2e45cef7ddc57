"""Every lock that more than one process takes, in one place: PostgreSQL advisory-lock ids (one
list, so that no two uses pick the same id) and the lease built on them (a lock file on SQLite).
"""

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, text

# Held for a transaction (pg_advisory_xact_lock) while it appends to this node's signed feed: one
# writer at a time, so sequence numbers follow each other without a gap. SQLite needs none: its
# write transactions already hold the database's write lock.
FEED_LOCK = 7220001
# With a second key (a peer's id, or INDEX_LEASE), the right to sync that peer: a session lock
# (pg_try_advisory_lock), held by one process's connection for as long as it does the job.
LEASE_LOCK = 7220002
# The key of LEASE_LOCK that the search index's catch-up takes: peer ids start at 1, so no
# peer's lease has it.
INDEX_LEASE = 0
# The key of LEASE_LOCK that the server's background work takes (the outbox sweep and the peers'
# rounds of the embedded default): held for the life of one worker process, so that a server
# with several workers runs that work once, not once per worker.
BACKGROUND_LEASE = -1


@contextmanager
def lease(engine: Engine, key: int) -> Iterator[bool]:
    """The right to do one sync job (a peer's, keyed by its id; the index's, INDEX_LEASE), held
    while this process does it. The lock belongs to a database connection (PostgreSQL) or an
    open file (SQLite), so a process that dies, even by kill -9, frees it at once: no job stays
    "running" after its process is gone, and two processes never pull the same peer at the same
    time. Yields whether this process has it."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            acquired = bool(
                conn.execute(
                    text("SELECT pg_try_advisory_lock(:k, :p)"), {"k": LEASE_LOCK, "p": key}
                ).scalar()
            )
            conn.commit()
            try:
                yield acquired
            finally:
                if acquired:
                    conn.execute(
                        text("SELECT pg_advisory_unlock(:k, :p)"), {"k": LEASE_LOCK, "p": key}
                    )
                    conn.commit()
        return
    database = engine.url.database
    if not database or database == ":memory:":
        yield True
        return
    path = Path(database)
    with path.with_name(f"{path.name}.sync-{key}.lock").open("a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True  # closing the file (or the process ending) releases the lock
