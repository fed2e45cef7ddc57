"""What the hub asks of a peer over HTTP: strictly parsed JSON within a size limit, a deadline
for the whole answer and a minimum rate, the feed's pages, and the documents a peer signs (its
checkpoint, a hub's directory). Peers are reached over https:// (plain http:// only on a
loopback address, unless the operator allows insecure peers).
"""

import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx

from federation import keys
from federation.canonical import CanonicalError, canonical, parse_strict
from federation.models import Peer, PeerKey, PeerSync
from node.core.db import utcnow
from node.core.settings import Settings

MAX_PAGE_BYTES = 4 * 1024 * 1024
PAGE_SIZE = 500  # a node serves up to `feed_page_max` (500 by default)
JOB_TIMEOUT = timedelta(minutes=10)
WATCH_EVERY = 0.1  # seconds between two looks at a request's deadline and rate

# When the running job must give up (time.monotonic()); set around each peer's job.
job_deadline: ContextVar[float] = ContextVar("job_deadline", default=float("inf"))


class SyncError(Exception):
    """The sync round with a peer stopped; recorded on its status, retried with backoff."""


@dataclass(frozen=True)
class Limits:
    """How long one request to a peer may take (the whole answer, not each read), how slow its
    answer may arrive (bytes/s, once `grace` seconds have passed since its headers), whether
    plain http:// is allowed to other machines than this one, and how old a peer's signed
    checkpoint may be before the peer is flagged stale."""

    deadline: float = 120.0
    min_rate: float = 32 * 1024
    grace: float = 5.0
    allow_insecure: bool = False
    freshness: timedelta = timedelta(days=1)

    @classmethod
    def of(cls, settings: Settings | None) -> "Limits":
        if settings is None:
            return cls()
        return cls(
            deadline=settings.peer_request_deadline.total_seconds(),
            min_rate=settings.peer_min_rate,
            grace=settings.peer_rate_grace.total_seconds(),
            allow_insecure=settings.allow_insecure_peers,
            freshness=settings.peer_freshness,
        )


# The limits of the running job's requests; set around each peer's job.
job_limits: ContextVar[Limits] = ContextVar("job_limits", default=Limits())  # noqa: B039 (frozen)
# How the running job signs its requests for feed pages (this program's signing key), so that
# the peer serves it the `network` entries; None: unsigned (anonymous). Set around each job.
job_signer: ContextVar[httpx.Auth | None] = ContextVar("job_signer", default=None)


def peer_url_problem(url: str, *, allow_insecure: bool) -> str | None:
    """Why `url` cannot be a peer's (None: it can): https://, or http:// to this machine only
    (a loopback address), unless `allow_insecure`."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{url[:200]}: a peer's URL starts with https:// and names a host"
    if parts.scheme == "https" or allow_insecure or _loopback(parts.hostname):
        return None
    return (
        f"{url[:200]} is plain http:// to another machine: a peer is reached over https://"
        " (INTEGRA_ALLOW_INSECURE_PEERS=true allows http:// for development only)"
    )


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Watch:
    """Cuts a request's connection once its deadline passes, or once its answer arrives slower
    than the minimum rate after the grace period, whatever the request is doing: httpx's
    timeouts are per read, and a peer that sends a byte every few seconds never lets one
    expire. The connection's socket comes from httpcore's `trace` extension."""

    def __init__(self, url: str, deadline: float, limits: Limits) -> None:
        self.url, self.deadline, self.limits = url, deadline, limits
        self.reason: str | None = None
        self.received = 0
        self.body_since: float | None = None  # when the answer's headers arrived
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="integra-peer-watch", daemon=True)
        self._thread.start()

    def trace(self, event: str, info: dict[str, Any]) -> None:
        if event in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            stream = info.get("return_value")
            with self._lock:
                self._socket = stream.get_extra_info("socket") if stream is not None else None
                if self.reason is not None:
                    self._shutdown()

    def _run(self) -> None:
        while not self._stop.wait(WATCH_EVERY):
            reason = self._problem(time.monotonic())
            if reason is not None:
                with self._lock:
                    self.reason = reason
                    self._shutdown()
                return

    def _problem(self, now: float) -> str | None:
        if now >= self.deadline:
            return f"{self.url}: too slow: no whole answer by its deadline"
        since, limits = self.body_since, self.limits
        if since is None or now - since <= limits.grace:
            return None
        if self.received < limits.min_rate * (now - since - limits.grace):
            return (
                f"{self.url}: too slow: {self.received} bytes in {now - since:.1f} s, under the"
                f" minimum of {limits.min_rate:.0f} bytes/s"
            )
        return None

    def _shutdown(self) -> None:
        """Ends every read and write on the connection at once (a close would not wake a
        blocked read)."""
        if self._socket is not None:
            try:
                socket.socket.shutdown(self._socket, socket.SHUT_RDWR)
            except OSError:  # closed meanwhile
                pass

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def fetch_json(
    client: httpx.Client,
    url: str,
    params: dict[str, Any] | None = None,
    timeout: float | None = None,
    limits: Limits | None = None,
    auth: httpx.Auth | None = None,
) -> Any:
    """GET with a hard size limit, parsed strictly (no duplicate keys, floats or deep nesting),
    within a deadline for the whole answer and at a minimum rate (`limits`, by default the
    job's), and within the job's deadline: a peer that trickles bytes is cut, not waited for.
    `timeout`: a shorter deadline for this request; `auth`: how to sign it."""
    limits = limits or job_limits.get()
    problem = peer_url_problem(url, allow_insecure=limits.allow_insecure)
    if problem:
        raise SyncError(problem)
    start = time.monotonic()
    deadline = min(start + limits.deadline, job_deadline.get())
    if timeout is not None:
        deadline = min(deadline, start + timeout)
    if deadline <= start:
        raise SyncError(f"the job ran past its limit of {JOB_TIMEOUT}")
    watch = _Watch(url, deadline, limits)
    try:
        data = _receive(client, url, params, watch, auth)
    except (httpx.HTTPError, CanonicalError) as exc:
        if watch.reason is not None:  # the watch cut the connection
            raise SyncError(watch.reason) from exc
        raise
    finally:
        watch.stop()
    if watch.reason is not None:  # cut after the last read: the body may be truncated
        raise SyncError(watch.reason)
    return parse_strict(bytes(data), max_bytes=MAX_PAGE_BYTES)


def _receive(
    client: httpx.Client,
    url: str,
    params: dict[str, Any] | None,
    watch: _Watch,
    auth: httpx.Auth | None = None,
) -> bytearray:
    """The answer's bytes. A connection of its own (closed after it), so that the watch has
    its socket; each step waits no longer than the deadline."""
    left = watch.deadline - time.monotonic()
    steps = httpx.Timeout(
        min(client.timeout.read or left, left), connect=min(client.timeout.connect or left, left)
    )
    with client.stream(
        "GET",
        url,
        params=params,
        timeout=steps,
        headers={"Connection": "close"},
        extensions={"trace": watch.trace},
        auth=auth if auth is not None else httpx.USE_CLIENT_DEFAULT,
    ) as response:
        watch.body_since = time.monotonic()
        if response.status_code != 200:
            raise SyncError(f"{url} answered {response.status_code}")
        data = bytearray()
        for chunk in response.iter_bytes():
            if watch.reason is not None:
                raise SyncError(watch.reason)
            data += chunk
            watch.received = len(data)
            if len(data) > MAX_PAGE_BYTES:
                raise CanonicalError(f"larger than {MAX_PAGE_BYTES} bytes")
    return data


def verify_signed(
    document: Any, name: str, peer: Peer, peer_keys: dict[str, PeerKey]
) -> dict[str, Any]:
    """A `{<name>, key, sig}` document signed by one of the peer's keys: its body."""
    # the checks import the gate and the federation schema: an enrolment needs neither
    from federation.sync.checks import key_problem, parse_time

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


def judge_checkpoint(
    state: PeerSync, checkpoint: dict[str, Any], freshness: timedelta
) -> str | None:
    """Flag the peer stale, or clear the flag, by its verified checkpoint; returns why the
    checkpoint is refused (None: it is accepted, and its time is the one later checkpoints may
    not go back before). Refused: a smaller size than the last accepted (history rewritten) or
    an earlier signing time (an old answer replayed or held back). Accepted but stale: signed
    longer than `freshness` ago. The time kept is never later than this clock: a peer that
    signs a time in the future cannot make its next honest checkpoints look old."""
    from federation.sync.checks import parse_time

    now, signed = utcnow(), parse_time(checkpoint["time"])
    assert signed is not None  # `verify_signed` refuses a document without a valid time
    last = state.checkpoint_time
    refused = stale = None
    if checkpoint["size"] < state.checkpoint_size:
        refused = stale = (
            f"the feed shrank from {state.checkpoint_size} to {checkpoint['size']}"
            " entries: history was rewritten"
        )
    elif last is not None and signed < last:
        refused = stale = (
            f"the checkpoint was signed at {signed:%Y-%m-%d %H:%M:%S} UTC, before the last one"
            f" accepted ({last:%Y-%m-%d %H:%M:%S} UTC): an old answer replayed or held back"
        )
    elif now - signed > freshness:
        stale = (
            f"the checkpoint was signed at {signed:%Y-%m-%d %H:%M:%S} UTC, longer ago than"
            f" {freshness} (INTEGRA_PEER_FRESHNESS): its answers are held back or replayed,"
            " or its clock is wrong"
        )
    state.stale_reason = stale
    state.stale_since = None if stale is None else (state.stale_since or now)
    if refused is None:
        state.checkpoint_time = min(signed, now)
    return refused


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
                auth=job_signer.get(),
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
