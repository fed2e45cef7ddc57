"""What the federation's routes answer: feed pages, held records, peer status, the EU pool."""

import json
import uuid
from typing import Annotated, Any

from pydantic import BaseModel, Field

from federation.models import FederatedRecord, Peer, PeerSync


class FeedPage(BaseModel):
    origin: str
    entries: list[dict[str, Any]] = Field(
        description="By seq: envelopes {payload, key, sig} (v1), with the body beside the"
        " payload that signs its hash (v2: {payload, key, sig, body}; body null and"
        " `redacted` {by_seq, reason} once purged), or a purged v1 entry {seq, leaf, redacted}."
        " An entry of scope `network` comes to a reader that is not a signed-in enrolled peer"
        ' with body null and `withheld: "network"`.'
    )
    next_after: int | None = Field(description="Pass as `after` for the next page.")


class HoldHit(BaseModel):
    detector: str = Field(description="What fired, e.g. 'a phone number'.")
    field: str = Field(description="The shared field it fired in, e.g. 'description'.")
    start: int
    end: int = Field(description="The words' characters in the field: [start, end).")
    words: str | None = Field(
        None,
        description="The words as written (kept while the hold is held or released; a hold"
        " superseded by a fixed version, or of a withdrawn record, keeps the offsets only).",
    )
    context: str | None = Field(
        None, description="The words with up to 40 characters of the text on each side."
    )
    reason: str | None = Field(None, description="For a text the federation schema refuses: why.")


class HoldRead(BaseModel):
    id: int
    record_type: str
    record_id: uuid.UUID
    version: int
    status: str
    hits: list[HoldHit]
    created_at: Any
    resolved_by: str | None
    justification: str | None


class Release(BaseModel):
    justification: Annotated[
        str,
        Field(
            min_length=10,
            max_length=5000,
            description="Why the finding is not personal data; kept in the audit log.",
        ),
    ]


class PeerStatus(BaseModel):
    origin: str
    kind: str = Field(description="`node`: a node this hub pulls; `hub`: a hub this node mirrors.")
    base_url: str
    last_seq: int
    checkpoint_size: int
    last_success_at: Any
    last_attempt_at: Any
    last_error: str | None
    next_attempt_at: Any
    records_held: int
    refusals: int
    checkpoint_time: Any = Field(description="When the last checkpoint accepted was signed.")
    stale: bool = Field(
        description="The peer's checkpoint is older than the last accepted one, or older than"
        " INTEGRA_PEER_FRESHNESS: its feed may be frozen or replayed."
    )
    stale_since: Any
    stale_reason: str | None

    @classmethod
    def of(cls, peer: Peer, state: PeerSync | None, held: int, refused: int) -> "PeerStatus":
        return cls(
            origin=peer.origin,
            kind=peer.kind,
            base_url=peer.base_url,
            last_seq=state.cursor if state else 0,
            checkpoint_size=state.checkpoint_size if state else 0,
            last_success_at=state.last_success_at if state else None,
            last_attempt_at=state.last_attempt_at if state else None,
            last_error=state.last_error if state else None,
            next_attempt_at=state.next_attempt_at if state else None,
            records_held=held,
            refusals=refused,
            checkpoint_time=state.checkpoint_time if state else None,
            stale=bool(state and state.stale_reason),
            stale_since=state.stale_since if state else None,
            stale_reason=state.stale_reason if state else None,
        )


class RefusalRead(BaseModel):
    id: int
    seq: int | None
    record_id: str | None
    reason: str
    at: Any


class RefusalPage(BaseModel):
    items: list[RefusalRead]
    next_cursor: int | None


class FederatedRead(BaseModel):
    record_id: str
    origin: str
    record_type: str
    version: int
    withdrawn: bool
    scope: str = Field(
        "public", description="As its origin signed it: `public` or `network` (signed in only)."
    )
    body: dict[str, Any] | None
    envelope: dict[str, Any] = Field(
        description="The origin's signed envelope, as received (v2: without the body, whose"
        " hash its payload signs)."
    )
    redacted: dict[str, Any] | None = Field(
        None, description="The origin's signed redaction purged this version's body."
    )

    @classmethod
    def of(cls, record: FederatedRecord) -> "FederatedRead":
        return cls(
            record_id=record.record_id,
            origin=record.origin,
            record_type=record.record_type,
            version=record.version,
            withdrawn=record.withdrawn,
            scope=record.scope,
            body=record.body,
            envelope=json.loads(record.signed_envelope),
            redacted=json.loads(record.redacted) if record.redacted else None,
        )


class HubHit(BaseModel):
    record_id: str
    origin: str
    record_type: str
    kind: str
    title: str
    summary: str
    snippet: str
    country: str | None


class HubSearchPage(BaseModel):
    items: list[HubHit]
    total: int
    facets: dict[str, list[dict[str, Any]]]
    next_cursor: str | None
