"""What the hub asks of a peer over HTTP: strictly parsed JSON within a size limit and the job's
deadline, the feed's pages, and the documents a peer signs (its checkpoint, a hub's directory).
"""

import time
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import timedelta
from typing import Any

import httpx

from federation import keys
from federation.canonical import CanonicalError, canonical, parse_strict
from federation.models import Peer, PeerKey
from federation.sync.checks import key_problem, parse_time

MAX_PAGE_BYTES = 4 * 1024 * 1024
PAGE_SIZE = 500  # a node serves up to `feed_page_max` (500 by default)
JOB_TIMEOUT = timedelta(minutes=10)

# When the running job must give up (time.monotonic()); set around each peer's job.
job_deadline: ContextVar[float] = ContextVar("job_deadline", default=float("inf"))


class SyncError(Exception):
    """The sync round with a peer stopped; recorded on its status, retried with backoff."""


def fetch_json(
    client: httpx.Client,
    url: str,
    params: dict[str, Any] | None = None,
    timeout: float | None = None,
) -> Any:
    """GET with a hard size limit, parsed strictly (no duplicate keys, floats or deep nesting),
    within the job's deadline: a peer that trickles bytes cannot hold the job for ever.
    `timeout`: for each step of the request, instead of the client's own."""
    limits = httpx.Timeout(timeout) if timeout is not None else httpx.USE_CLIENT_DEFAULT
    with client.stream("GET", url, params=params, timeout=limits) as response:
        if response.status_code != 200:
            raise SyncError(f"{url} answered {response.status_code}")
        data = bytearray()
        for chunk in response.iter_bytes():
            if time.monotonic() > job_deadline.get():
                raise SyncError(f"the job ran past its limit of {JOB_TIMEOUT}")
            data += chunk
            if len(data) > MAX_PAGE_BYTES:
                raise CanonicalError(f"larger than {MAX_PAGE_BYTES} bytes")
    return parse_strict(bytes(data), max_bytes=MAX_PAGE_BYTES)


def verify_signed(
    document: Any, name: str, peer: Peer, peer_keys: dict[str, PeerKey]
) -> dict[str, Any]:
    """A `{<name>, key, sig}` document signed by one of the peer's keys: its body."""
    if not isinstance(document, dict) or set(document) != {name, "key", "sig"}:
        raise SyncError(f"the {name} is not {{{name}, key, sig}}")
    body = document[name]
    if not isinstance(body, dict) or body.get("origin") != peer.origin:
        raise SyncError(f"the {name} is not this peer's")
    problem = key_problem(peer_keys, document["key"], parse_time(body.get("time")))
    if problem or not keys.verify(
        peer_keys[document["key"]].public_key, canonical(body), str(document["sig"])
    ):
        raise SyncError(f"the {name}'s signature is not valid ({problem or 'mismatch'})")
    return body


def fetch_checkpoint(
    client: httpx.Client, peer: Peer, peer_keys: dict[str, PeerKey]
) -> dict[str, Any]:
    """The peer's signed checkpoint (the size and Merkle root of its feed), verified."""
    signed = fetch_json(client, f"{peer.base_url}/federation/v1/checkpoint")
    body = verify_signed(signed, "checkpoint", peer, peer_keys)
    if set(body) != {"origin", "size", "root", "time"} or not isinstance(body["size"], int):
        raise SyncError("the checkpoint does not have exactly origin, size, root, time")
    return body


def pages(client: httpx.Client, peer: Peer, after: int, upto: int) -> Iterator[list[Any]]:
    """Pages of entries after `after` up to `upto`, halving the page size when a page is
    unreadable (an entry that cannot be read alone comes as ("unreadable", seq, reason))."""
    limit = PAGE_SIZE
    while after < upto:
        try:
            page = fetch_json(
                client,
                f"{peer.base_url}/federation/v1/feed",
                {"after": after, "limit": min(limit, upto - after)},
            )
        except CanonicalError as exc:
            if limit > 1:
                limit = max(1, limit // 2)
                continue
            yield [("unreadable", after + 1, str(exc))]  # this one entry cannot be read
            after += 1
            limit = PAGE_SIZE
            continue
        entries = page.get("entries") if isinstance(page, dict) else None
        if not isinstance(entries, list) or not entries:
            return
        entries = entries[: upto - after]
        yield entries
        after += len(entries)
