"""Data-subject requests and retention across every domain: the orchestration the composition
root owns, over what each domain says it holds (`node.core.privacy`, `registry.privacy`,
`practices.privacy`, and the federation's part in `node.privacy.shared`).

`find` lists every place a person appears; `export` gives what is held there, readable
(Markdown) and for machines (JSON); `erase` removes or pseudonymises it in the caller's one
transaction, and a record this node shared that named the person is republished without the
name and its earlier bodies redacted wherever they travelled. Each request is audited under its
reference (given by the operator), with counts: never the person's data. Retention removes what
is kept past its period, audited in counts by kind. Synchronous: the API and the CLI run these
through `AsyncSession.run_sync`. Never commits.
"""

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from federation.redaction import scrub_after_commit
from node.core import privacy as kernel
from node.core.auth import Principal
from node.core.db import utcnow
from node.core.errors import Conflict, InvalidInput
from node.core.privacy import Erased, Place, Retention, audit_entry
from node.core.settings import Settings
from node.privacy import shared
from node.privacy.matching import PersonMatcher
from practices import privacy as practices_privacy
from practices.needs import privacy as needs_privacy
from registry import privacy as registry_privacy

REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/#-]{0,63}")
MAX_IDENTIFIERS = 20
MAX_IDENTIFIER = 200


@dataclass(frozen=True)
class Person:
    """A person as a request names them: names (any script), e-mail addresses, phones."""

    names: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()

    def checked(self) -> "Person":
        given = {"names": self.names, "emails": self.emails, "phones": self.phones}
        for name, values in given.items():
            if len(values) > MAX_IDENTIFIERS:
                raise InvalidInput(name, f"at most {MAX_IDENTIFIERS}")
            for value in values:
                if not value.strip() or len(value) > MAX_IDENTIFIER:
                    raise InvalidInput(name, f"each is 1 to {MAX_IDENTIFIER} characters")
                if any(ord(c) < 32 or 0xD800 <= ord(c) <= 0xDFFF for c in value):
                    raise InvalidInput(name, "a control character or a lone surrogate")
        for email in self.emails:
            if "@" not in email:
                raise InvalidInput("emails", "an e-mail address has an @")
        for phone in self.phones:
            if sum(c.isdigit() for c in phone) < 7:
                raise InvalidInput("phones", "a phone number has at least 7 digits")
        if not (self.names or self.emails or self.phones):
            raise InvalidInput("names", "name the person: a name, an e-mail address or a phone")
        return self


def check_reference(reference: str | None, person: Person, *, required: bool) -> str | None:
    """The request's reference (the operator's, e.g. "DSR-2026-014"): it is written in the
    audit log, so it must not be the person's data."""
    if reference is None:
        if required:
            raise InvalidInput("request", "give the request's reference (e.g. DSR-2026-014)")
        return None
    if not REFERENCE.fullmatch(reference):
        raise InvalidInput(
            "request", "1 to 64 letters, digits and . _ : / # - (starting with a letter or digit)"
        )
    if matcher_of(person).spans(reference):
        raise InvalidInput("request", "the reference names the person: it would be kept")
    return reference


def matcher_of(person: Person) -> PersonMatcher:
    return PersonMatcher.of(person.names, person.emails, person.phones)


def _matcher(session: Session, person: Person) -> PersonMatcher:
    """The person, with the records that are theirs: accounts and contact points."""
    base = matcher_of(person)
    users = [user.id for user in kernel.find_users(session, base)]
    return base.linked(users, registry_privacy.person_contact_ids(session, base))


def places(session: Session, person: Person, settings: Settings | None) -> list[Place]:
    """Every place the person appears on this node."""
    matcher = _matcher(session, person)
    return [
        *kernel.find(session, matcher),
        *registry_privacy.find(session, matcher),
        *practices_privacy.find(session, matcher),
        *needs_privacy.find(session, matcher),
        *shared.find(session, matcher, settings),
    ]


def find(
    session: Session,
    person: Person,
    settings: Settings | None,
    *,
    by: Principal,
    request: str | None,
    action: str = "privacy_find",
) -> list[Place]:
    """Every place the person appears, audited (how many places, never what)."""
    found = places(session, person, settings)
    audit_entry(
        session,
        by,
        action=action,
        entity_type="privacy_request",
        entity_id=request,
        detail={"places": len(found)},
    )
    return found


def export(
    session: Session,
    person: Person,
    settings: Settings | None,
    *,
    by: Principal,
    request: str | None,
) -> dict[str, Any]:
    """What this node holds about the person, for them (JSON; `markdown` renders it)."""
    found = find(session, person, settings, by=by, request=request, action="privacy_export")
    return {
        "request": request,
        "generated_at": utcnow().isoformat(),
        "node": {"country": settings.country if settings else None},
        "person": {
            "names": list(person.names),
            "emails": list(person.emails),
            "phones": list(person.phones),
        },
        "places": [place.as_json() for place in found],
    }


@dataclass
class Erasure:
    request: str
    erased: Erased
    redacted: list[str] = field(default_factory=list)  # records republished without the person

    def as_json(self) -> dict[str, Any]:
        return {"request": self.request, "erased": self.erased.counts, "redacted": self.redacted}


def erase(
    session: Session,
    person: Person,
    settings: Settings | None,
    *,
    by: Principal,
    request: str,
) -> Erasure:
    """Remove or pseudonymise every place the person appears, in the caller's transaction.
    Practices and reports that named them get a new version without the name, and each
    record of this node whose shared bodies named them a signed redaction of those bodies
    (queued after the new version)."""
    matcher = _matcher(session, person)
    if by.user_id is not None and by.user_id in matcher.user_ids:
        raise Conflict("the person is you: another administrator erases your account")
    erased = Erased()
    # The domains first: they read which accounts are the person's before those go.
    practice_erased, _changed = practices_privacy.erase(session, matcher)
    erased.merge(practice_erased)
    erased.merge(registry_privacy.erase(session, matcher))
    erased.merge(needs_privacy.erase(session, matcher))  # never shared: nothing to republish
    held_erased, named = shared.erase(session, matcher, settings)
    erased.merge(held_erased)
    erased.merge(kernel.erase(session, matcher))
    redactions = shared.below_versions(session, named)
    shared.queue_redactions(session, redactions)
    audit_entry(
        session,
        by,
        action="privacy_erase",
        entity_type="privacy_request",
        entity_id=request,
        detail={"erased": erased.counts, "redacted": len(redactions)},
    )
    session.flush()
    scrub_after_commit(session)
    return Erasure(request, erased, sorted(f"{kind}:{rid}" for kind, rid in redactions))


# --- retention ---------------------------------------------------------------------------------


def retention(
    session: Session,
    settings: Settings,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    by: Principal,
) -> list[Retention]:
    """Remove (or, with `dry_run`, count) the personal data kept past its period, as the
    settings say; audited in counts by kind, never the data. `now` is the clock (a test moves
    it forward)."""
    now = now or utcnow()
    leaving = kernel.disabled_accounts(
        session, now=now, period=settings.retention_disabled_accounts
    )
    if not dry_run:
        practices_privacy.forget_authors(session, leaving)
    done = [
        *kernel.retain(
            session,
            now=now,
            audit_period=settings.retention_audit_entries,
            token_period=settings.retention_expired_tokens,
            account_period=settings.retention_disabled_accounts,
            dry_run=dry_run,
        ),
        registry_privacy.retain(
            session, now=now, period=settings.retention_unverified_contacts, dry_run=dry_run
        ),
        practices_privacy.retain(
            session, now=now, period=settings.retention_visit_participants, dry_run=dry_run
        ),
    ]
    removed = {r.kind: r.count for r in done if r.count}
    if removed and not dry_run:
        audit_entry(
            session,
            by,
            action="retention",
            entity_type="privacy",
            entity_id=None,
            detail={"removed": removed},
        )
        session.flush()
        scrub_after_commit(session)
    return done


def retention_json(done: list[Retention]) -> list[dict[str, Any]]:
    return [
        {
            "kind": r.kind,
            "period_days": r.period.days,
            "count": r.count,
            "kept_forever": not r.period,
        }
        for r in done
    ]
