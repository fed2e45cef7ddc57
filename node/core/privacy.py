"""Data protection by design: what every domain shares to answer a data subject and to apply
retention, and the kernel's own personal data (accounts, tokens, the audit log).

A request names a person by names (any script), e-mail addresses and phone numbers; the
composition root (node.privacy) turns it into a `Matcher` built on the personal-data gate's name
matching, and hands it to each domain's `privacy` module, which says where the person appears
(`Place`), and on erasure removes or pseudonymises it. The kernel knows no domain: it only
defines the shapes they answer in, and does the same for its own tables.
"""

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from node.core.auth import Principal
from node.core.models import (
    ApiToken,
    AuditEntry,
    OutboxMessage,
    PasswordReset,
    SignInAttempt,
    User,
)

REMOVED = "[removed]"  # what stands where an erased person's name or address was
EXCERPT = 40  # characters shown on each side of a finding in a listing


class Matcher(Protocol):
    """One person, as a request names them."""

    @property
    def user_ids(self) -> frozenset[uuid.UUID]:
        """The accounts that are the person (found by the kernel first)."""

    @property
    def linked_ids(self) -> frozenset[str]:
        """Ids of records that are the person (accounts, contact points): audit entries about
        them are about the person."""

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Where the person appears in a text (name, e-mail or phone), as written, in order,
        not overlapping."""

    def is_phone(self, number: str) -> bool:
        """Whether a stored phone number is one of the person's."""


@dataclass(frozen=True)
class Place:
    """One place the person appears: a kind of record, its id, the field, and what is held
    there (the field's value, or the whole record when the record is the person's)."""

    kind: str
    id: str
    field: str
    value: Any
    found: tuple[str, ...] = ()  # the words that matched, as written

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.id,
            "field": self.field,
            "found": list(self.found),
            "value": self.value,
        }


@dataclass
class Erased:
    """What an erasure did, in counts by kind of place: never the data."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, count: int = 1) -> None:
        if count:
            self.counts[kind] = self.counts.get(kind, 0) + count

    def merge(self, other: "Erased") -> None:
        for kind, count in other.counts.items():
            self.add(kind, count)


@dataclass(frozen=True)
class Retention:
    """Removals retention would do (or did) of one kind of personal data."""

    kind: str
    period: timedelta
    count: int


# --- text: finding and scrubbing a person in strings and JSON values -------------------------


def words_in(matcher: Matcher, value: Any) -> tuple[str, ...]:
    """The words of every string of a value (JSON: lists and objects walked) that are the
    person's."""
    found: list[str] = []
    for text in strings(value):
        found += [text[a:b] for a, b in matcher.spans(text)]
    return tuple(found)


def strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings(key)
            yield from strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from strings(item)


def scrubbed(matcher: Matcher, value: Any) -> tuple[Any, int]:
    """The value with each of the person's words replaced by `REMOVED`, and how many were."""
    if isinstance(value, str):
        spans = matcher.spans(value)
        out, last = [], 0
        for start, end in spans:
            out += [value[last:start], REMOVED]
            last = end
        return "".join([*out, value[last:]]), len(spans)
    if isinstance(value, dict):
        total, result = 0, {}
        for key, item in value.items():
            new_key, a = scrubbed(matcher, key)
            new_item, b = scrubbed(matcher, item)
            result[new_key] = new_item
            total += a + b
        return result, total
    if isinstance(value, list | tuple):
        items = [scrubbed(matcher, item) for item in value]
        return [item for item, _ in items], sum(n for _, n in items)
    return value, 0


def text_places(
    matcher: Matcher, kind: str, record_id: object, values: dict[str, Any]
) -> list[Place]:
    """A place for each field (by name) whose value names the person."""
    places = []
    for name, value in values.items():
        found = words_in(matcher, value)
        if found:
            places.append(Place(kind, str(record_id), name, value, found))
    return places


def scrub_fields(matcher: Matcher, row: object, names: Sequence[str]) -> int:
    """Scrub these attributes of an ORM row in place; how many words went."""
    total = 0
    for name in names:
        value = getattr(row, name)
        new, count = scrubbed(matcher, value)
        if count:
            setattr(row, name, new)
            total += count
    return total


def queue(session: Session, topic: str, entity_id: object) -> None:
    """`node.core.outbox.enqueue` for a synchronous session (privacy work runs in one, through
    `AsyncSession.run_sync`): the work is done once the caller's transaction commits."""
    session.add(OutboxMessage(topic=topic, entity_id=str(entity_id)))
    session.info["outbox"] = True


def audit_entry(
    session: Session,
    by: Principal,
    *,
    action: str,
    entity_type: str,
    entity_id: str | None,
    detail: dict[str, Any],
) -> None:
    """An audit entry in a synchronous session (what `audit.record` adds in an async one)."""
    session.add(
        AuditEntry(
            actor_id=by.user_id,
            actor=by.label,
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            detail=detail,
        )
    )


# --- the kernel's own personal data -----------------------------------------------------------

# What each kind of the kernel's records holds of a person (the record of processing reads it).
PERSONAL_DATA = {
    "user_account": ("email", "name", "role", "password_hash", "is_active", "created_at"),
    "api_token": ("name", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at"),
    "audit_entry": ("actor", "actor_id", "action", "entity_type", "entity_id", "at"),
    "password_reset": ("user_id", "created_by", "created_at", "expires_at", "used_at"),
    "sign_in_attempt": ("account", "address", "at", "succeeded"),
}


def find_users(session: Session, matcher: Matcher) -> list[User]:
    """The accounts that are the person: their e-mail address or their name matches."""
    return [
        user
        for user in session.scalars(select(User).order_by(User.email))
        if matcher.spans(user.email) or matcher.spans(user.name)
    ]


def find(session: Session, matcher: Matcher) -> list[Place]:
    """Every place of the kernel's tables the person appears: their accounts and tokens,
    and audit entries they made, that are about them, or whose detail names them."""
    places: list[Place] = []
    for user in session.scalars(select(User).where(User.id.in_(matcher.user_ids))):
        places.append(Place("user", str(user.id), "(account)", _user(user), (user.email,)))
        tokens = session.scalars(select(ApiToken).where(ApiToken.user_id == user.id))
        for token in tokens:
            places.append(Place("api_token", str(token.id), "(token)", _token(token)))
    for token in session.scalars(select(ApiToken).where(ApiToken.user_id.not_in(matcher.user_ids))):
        places += text_places(matcher, "api_token", token.id, {"name": token.name})
    for reset in session.scalars(select(PasswordReset).order_by(PasswordReset.created_at)):
        found = words_in(matcher, reset.created_by)
        if found or reset.user_id in matcher.user_ids:
            value: dict[str, Any] = {
                "for_account": str(reset.user_id),
                "created_by": reset.created_by,
                "created_at": reset.created_at.isoformat(),
                "expires_at": reset.expires_at.isoformat(),
                "used_at": _iso(reset.used_at),
            }
            places.append(Place("password_reset", str(reset.id), "(reset link)", value, found))
    for attempt in session.scalars(select(SignInAttempt).order_by(SignInAttempt.id)):
        if matcher.spans(attempt.account):
            value = {
                "at": attempt.at.isoformat(),
                "account": attempt.account,
                "address": attempt.address,
                "succeeded": attempt.succeeded,
            }
            places.append(
                Place("sign_in_attempt", str(attempt.id), "(attempt)", value, (attempt.account,))
            )
    for entry in session.scalars(select(AuditEntry).order_by(AuditEntry.id)):
        found = words_in(matcher, [entry.actor, entry.detail])
        if found or _about(matcher, entry):
            places.append(Place("audit_entry", str(entry.id), "(entry)", _entry(entry), found))
    return places


def _about(matcher: Matcher, entry: AuditEntry) -> bool:
    return entry.actor_id in matcher.user_ids or entry.entity_id in matcher.linked_ids


def erase(session: Session, matcher: Matcher) -> Erased:
    """Delete the person's accounts (their tokens and assignments go with them); pseudonymise
    the audit entries that name them (actor and detail), keeping what was done, when, to which
    record: the log of processing stays, without the person."""
    erased = Erased()
    for entry in session.scalars(select(AuditEntry)):
        if matcher.spans(entry.actor) or entry.actor_id in matcher.user_ids:
            entry.actor = REMOVED
            erased.add("audit_entry")
        detail, count = scrubbed(matcher, entry.detail)
        if count:
            entry.detail = detail
            erased.add("audit_entry.detail")
    for reset in session.scalars(select(PasswordReset)):
        if matcher.spans(reset.created_by):
            reset.created_by = REMOVED  # the person's own links go with their accounts
            erased.add("password_reset.created_by")
    for attempt in session.scalars(select(SignInAttempt)):
        if matcher.spans(attempt.account):
            session.delete(attempt)
            erased.add("sign_in_attempt")
    others = select(ApiToken).where(ApiToken.user_id.not_in(matcher.user_ids))
    for token in session.scalars(others):
        if scrub_fields(matcher, token, ["name"]):
            erased.add("api_token.name")
    if matcher.user_ids:
        tokens = session.scalar(select(func.count()).where(ApiToken.user_id.in_(matcher.user_ids)))
        erased.add("api_token", int(tokens or 0))
        users = session.execute(delete(User).where(User.id.in_(matcher.user_ids)))
        erased.add("user", int(getattr(users, "rowcount", 0) or 0))
    return erased


def _user(user: User) -> dict[str, Any]:
    return {
        "email": user.email,
        "name": user.name,
        "role": user.role,
        "active": user.is_active,
        "created_at": user.created_at.isoformat(),
        "updated_at": user.updated_at.isoformat(),
    }


def _token(token: ApiToken) -> dict[str, Any]:
    return {
        "name": token.name,
        "prefix": token.prefix,
        "created_at": token.created_at.isoformat(),
        "expires_at": _iso(token.expires_at),
        "last_used_at": _iso(token.last_used_at),
        "revoked_at": _iso(token.revoked_at),
    }


def _entry(entry: AuditEntry) -> dict[str, Any]:
    return {
        "at": entry.at.isoformat(),
        "actor": entry.actor,
        "action": entry.action,
        "entity_type": entry.entity_type,
        "entity_id": entry.entity_id,
        "detail": entry.detail,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# --- retention of the kernel's data -----------------------------------------------------------


def retain(
    session: Session,
    *,
    now: datetime,
    audit_period: timedelta,
    token_period: timedelta,
    account_period: timedelta,
    dry_run: bool,
) -> list[Retention]:
    """Remove audit entries older than `audit_period`, tokens expired or revoked more than
    `token_period` ago, and accounts disabled more than `account_period` ago (a period of 0
    keeps them for ever). With `dry_run`, only count them."""
    out = []
    if audit_period:
        old = AuditEntry.at < now - audit_period
        out.append(
            Retention("audit_entry", audit_period, _remove(session, AuditEntry, old, dry_run))
        )
    if token_period:
        cut = now - token_period
        stale = (ApiToken.expires_at < cut) | (ApiToken.revoked_at < cut)
        out.append(Retention("api_token", token_period, _remove(session, ApiToken, stale, dry_run)))
    if account_period:
        ids = disabled_accounts(session, now=now, period=account_period)
        if not dry_run:
            clear_actor(session, ids)
            _remove(session, User, User.id.in_(ids), dry_run)
        out.append(Retention("user_account", account_period, len(ids)))
    return out


def disabled_accounts(session: Session, *, now: datetime, period: timedelta) -> list[uuid.UUID]:
    """The accounts disabled (not changed since) more than `period` ago; none for a period
    of 0."""
    if not period:
        return []
    disabled = User.is_active.is_(False) & (User.updated_at < now - period)
    return list(session.scalars(select(User.id).where(disabled)))


def _remove(session: Session, model: Any, where: Any, dry_run: bool) -> int:
    if dry_run:
        return int(session.scalar(select(func.count()).select_from(model).where(where)) or 0)
    result = session.execute(
        delete(model).where(where).execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def clear_actor(session: Session, user_ids: Iterable[uuid.UUID]) -> None:
    """Audit entries by accounts retention removed keep what was done, not who (by label)."""
    ids = list(user_ids)
    if ids:
        session.execute(
            update(AuditEntry).where(AuditEntry.actor_id.in_(ids)).values(actor=REMOVED)
        )
