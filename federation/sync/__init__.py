"""The hub's side of signed sync (and a mirror's, of its hub): pull each enrolled peer's feed,
verify every entry and checkpoint, apply what passes.

    client   HTTP: strict JSON within limits, pages, signed checkpoints
    checks   why an entry cannot be accepted (shape, key, signature, namespace, schema, gate)
    store    staging and writing accepted records, refusals, the hub's relay
    directory  the hub's signed key directory, a node's key rotations
    peer     one peer's job: receive, check, apply, record the outcome (backoff)
    helpers  the helper processes a round syncs large backlogs in
    rounds   a round over every due peer, then the search index's catch-up
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

# Each name below is imported from its module when first asked for: a module that needs one part
# (`federation.trust` needs the client) imports that part, not the rounds, the store and the
# EU pool's search documents behind them (an `integra` command is a process of its own).
if TYPE_CHECKING:
    from federation.sync.checks import (
        HUB_GATE,
        body_problem,
        entry_problem,
        key_problem,
        relay_problem,
    )
    from federation.sync.client import JOB_TIMEOUT, MAX_PAGE_BYTES, PAGE_SIZE, SyncError, fetch_json
    from federation.sync.directory import accept_rotations, listed_keys, signed_directory
    from federation.sync.peer import (
        COMMIT_EVERY,
        Job,
        Round,
        backoff,
        due_peers,
        record_failure,
        record_success,
        sync_one,
        sync_peer,
        sync_under_lease,
    )
    from federation.sync.rounds import PARALLEL_BACKLOG, run_round
    from federation.sync.store import Relay, relay_for

__all__ = [
    "COMMIT_EVERY",
    "HUB_GATE",
    "JOB_TIMEOUT",
    "MAX_PAGE_BYTES",
    "PAGE_SIZE",
    "PARALLEL_BACKLOG",
    "Job",
    "Relay",
    "Round",
    "SyncError",
    "accept_rotations",
    "backoff",
    "body_problem",
    "due_peers",
    "entry_problem",
    "fetch_json",
    "key_problem",
    "listed_keys",
    "record_failure",
    "record_success",
    "relay_for",
    "relay_problem",
    "run_round",
    "signed_directory",
    "sync_one",
    "sync_peer",
    "sync_under_lease",
]

# name -> the module that defines it
_HOME = {
    name: f"federation.sync.{module}"
    for module, names in {
        "checks": ("HUB_GATE", "body_problem", "entry_problem", "key_problem", "relay_problem"),
        "client": ("JOB_TIMEOUT", "MAX_PAGE_BYTES", "PAGE_SIZE", "SyncError", "fetch_json"),
        "directory": ("accept_rotations", "listed_keys", "signed_directory"),
        "peer": (
            "COMMIT_EVERY",
            "Job",
            "Round",
            "backoff",
            "due_peers",
            "record_failure",
            "record_success",
            "sync_one",
            "sync_peer",
            "sync_under_lease",
        ),
        "rounds": ("PARALLEL_BACKLOG", "run_round"),
        "store": ("Relay", "relay_for"),
    }.items()
    for name in names
}


if not TYPE_CHECKING:  # for mypy, the names are the imports above

    def __getattr__(name: str) -> Any:
        home = _HOME.get(name)
        if home is None:  # a submodule (`from federation.sync import helpers`): imported as usual
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(import_module(home), name)
        globals()[name] = value
        return value
