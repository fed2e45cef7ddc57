"""Requests a peer signs with its enrolled Ed25519 key, to read the `network` entries of a feed.

A subset of HTTP Message Signatures (RFC 9421), with exactly one spelling accepted:

    Signature-Input: integra=("@method" "@path" "@query");created=1764000000;
                     keyid="ed25519:<32 hex>";nonce="<16 to 64 base64url>";alg="ed25519"
    Signature: integra=:<the Ed25519 signature, base64 with padding>:

(one line each). The signature covers the RFC 9421 signature base of the method, the path, the
query and those parameters. A server accepts it only from a key of a peer it trusts to read
(`READER_KINDS`: on a hub, its enrolled nodes, which mirror it; on a node, the hub it mirrors
or trusts with `integra hub trust`), neither revoked nor awaiting confirmation; signed within
`WINDOW` of the server's clock either way (a peer's clock is trusted no further; a signer that
is refused learns the server's time from the answer's `Date` and signs again), and once:
each (key, nonce) is kept until its request could no longer be accepted, so a replay is refused.
A request signed by a key that is no reader's here is served as an unsigned one (public
entries whole, `network` ones without their bodies): a node that mirrors a hub which has not
enrolled it still mirrors what is public. The path and query are checked as the server
receives them: a reverse proxy in front of it must pass them unchanged.
"""

import re
import secrets
from base64 import b64encode
from collections.abc import Generator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from federation import feed, keys
from federation.models import PEER_HUB, PEER_NODE, PEER_READER, Peer, PeerKey, PeerNonce
from node.core.db import utcnow
from node.core.settings import Settings

LABEL = "integra"
COMPONENTS = '("@method" "@path" "@query")'
WINDOW = timedelta(seconds=60)
INPUT = re.compile(
    LABEL
    + "="
    + re.escape(COMPONENTS)
    + r';created=(?P<created>[0-9]{1,12});keyid="(?P<keyid>ed25519:[0-9a-f]{32})"'
    + r';nonce="(?P<nonce>[A-Za-z0-9_-]{16,64})";alg="ed25519"'
)
SIGNATURE = re.compile(LABEL + r"=:(?P<sig>[A-Za-z0-9+/]{85}[AQgw]==):")
READER_KINDS = {"hub": (PEER_NODE,), "node": (PEER_HUB, PEER_READER)}


class SignatureRefused(Exception):
    """A signed request that cannot be accepted; the message says why (answered with 401)."""


@dataclass(frozen=True)
class SignedRequest:
    key_id: str
    nonce: str
    created: int
    params: str  # the signature parameters, as signed
    signature: str  # base64url, as `keys.verify` takes it


def signature_base(method: str, target: str, params: str) -> bytes:
    """The RFC 9421 signature base of a request to `target` (path and query, as sent)."""
    path, _, query = target.partition("?")
    lines = (
        f'"@method": {method.upper()}',
        f'"@path": {path}',
        f'"@query": ?{query}',
        f'"@signature-params": {params}',
    )
    return "\n".join(lines).encode("utf-8")


def sign(
    key: keys.SigningKey, method: str, target: str, created: int | None = None
) -> dict[str, str]:
    """The headers that sign a request to `target` (path and query) under `key`."""
    when = int(utcnow().timestamp()) if created is None else created
    nonce = secrets.token_urlsafe(16)
    params = f'{COMPONENTS};created={when};keyid="{key.key_id}";nonce="{nonce}";alg="ed25519"'
    raw = keys.unb64(key.sign(signature_base(method, target, params)))
    return {
        "Signature-Input": f"{LABEL}={params}",
        "Signature": f"{LABEL}=:{b64encode(raw).decode('ascii')}:",
    }


# How far each peer's clock is from ours (seconds, by host), as its answers' `Date` said.
_OFFSETS: dict[str, float] = {}


class PeerAuth(httpx.Auth):
    """Signs every request of an httpx client with this program's signing key.

    A peer checks `created` against its own clock, and peers' clocks drift (or lie). When a
    peer refuses a request (401) and its `Date` header puts its clock more than half a window
    from ours, the request is signed once more at the peer's time, and later requests to that
    host start from it. A peer misstating its time only misleads the requests it reads itself:
    the offset never touches what this program checks or stores."""

    def __init__(self, key: keys.SigningKey) -> None:
        self.key = key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        target = request.url.raw_path.decode("ascii")
        host = request.url.netloc.decode("ascii")
        request.headers.update(sign(self.key, request.method, target, self._now(host)))
        response = yield request
        told = _peer_time(response) if response.status_code == 401 else None
        if told is None:
            return
        offset = told - utcnow().timestamp()
        if abs(offset - _OFFSETS.get(host, 0.0)) <= WINDOW.total_seconds() / 2:
            return  # refused for another reason than the time
        _OFFSETS[host] = offset
        request.headers.update(sign(self.key, request.method, target, self._now(host)))
        yield request

    @staticmethod
    def _now(host: str) -> int:
        return int(utcnow().timestamp() + _OFFSETS.get(host, 0.0))


def _peer_time(response: httpx.Response) -> float | None:
    """The time a peer's answer says it was sent (its `Date` header), None if unreadable."""
    try:
        return parsedate_to_datetime(response.headers.get("date", "")).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def signer_for(session: Session, settings: Settings | None) -> PeerAuth | None:
    """This program's signing key as its requests' signer (None without one: unsigned)."""
    if settings is None or not settings.country:
        return None
    try:
        return PeerAuth(feed.active_key(session, settings))
    except (feed.FederationNotConfigured, OSError, ValueError):
        return None


def parse(signature_input: str | None, signature: str | None) -> SignedRequest | None:
    """The signed request's parameters, None when it is not signed at all. Raises
    `SignatureRefused` for anything but exactly the spelling this module writes."""
    if signature_input is None and signature is None:
        return None
    found = INPUT.fullmatch(signature_input or "")
    sig = SIGNATURE.fullmatch(signature or "")
    if found is None or sig is None:
        raise SignatureRefused(
            f"the request is signed, but not as Signature-Input: {LABEL}={COMPONENTS};created=…;"
            f'keyid="ed25519:…";nonce="…";alg="ed25519" with Signature: {LABEL}=:…:'
        )
    text = sig["sig"].rstrip("=").replace("+", "-").replace("/", "_")
    params = (signature_input or "")[len(LABEL) + 1 :]
    return SignedRequest(found["keyid"], found["nonce"], int(found["created"]), params, text)


def admit(
    session: Session, signed: SignedRequest, *, method: str, target: str, role: str
) -> str | None:
    """The origin of the peer that signed this request, or None when its key is not that of
    a peer trusted here to read (a stranger, or a node not enrolled: served as anyone is).
    In the caller's transaction, which keeps the nonce: commit it before answering. Raises
    `SignatureRefused` for a reader's key whose request does not check: signed too far from
    this server's clock, forged or altered, replayed, or the key revoked."""
    row = session.execute(
        select(PeerKey, Peer)
        .join(Peer, Peer.id == PeerKey.peer_id)
        .where(PeerKey.key_id == signed.key_id)
    ).one_or_none()
    if row is None or not row[1].active or row[1].kind not in READER_KINDS.get(role, ()):
        return None
    key, peer = row
    if key.revoked_at is not None or key.revoked_seq is not None or key.awaiting_confirmation:
        raise SignatureRefused(f"key {signed.key_id} is revoked or awaits confirmation here")
    now = utcnow()
    if abs(signed.created - now.timestamp()) > WINDOW.total_seconds():
        raise SignatureRefused(
            f"the request was signed at {signed.created} (Unix time), more than"
            f" {WINDOW.total_seconds():.0f} s from this server's clock"
            f" ({int(now.timestamp())}): sign it again now, and check the clock"
        )
    base = signature_base(method, target, signed.params)
    if not keys.verify(key.public_key, base, signed.signature):
        raise SignatureRefused("the signature does not match the request (altered or forged)")
    _once(session, signed, datetime.fromtimestamp(signed.created, UTC), now)
    return peer.origin


def _once(session: Session, signed: SignedRequest, created: datetime, now: datetime) -> None:
    """Keep the request's nonce; refuse it if it was kept already (a replay). Nonces older
    than the window go: a request signed then is refused by its time anyway."""
    session.execute(delete(PeerNonce).where(PeerNonce.created_at < now - WINDOW))
    if session.get(PeerNonce, (signed.key_id, signed.nonce)) is not None:
        raise SignatureRefused("this signed request was answered already (a replay)")
    try:
        with session.begin_nested():
            session.add(PeerNonce(key_id=signed.key_id, nonce=signed.nonce, created_at=created))
    except IntegrityError:
        raise SignatureRefused("this signed request was answered already (a replay)") from None
