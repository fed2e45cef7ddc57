"""The sample data from the INTEGRA report, whole or cut down to one country's node, and the
sample accounts that come with it.

A national node keeps its own country's records: its organisations, the protocols between
them, its practices, and the study visits its authorities organised (abroad, mostly). What
those records say about other countries' bodies stays, as names rather than registry refs,
and practices observed abroad are left out: they are the other node's records.
"""

import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from node.console import err, fail, out, run_in_session
from node.core.auth import UserRole, hash_password, system_principal, verify_password
from node.core.db import utcnow
from node.core.models import User
from node.core.tabular import ImportReport

ROOT = Path(__file__).parent.parent
REGISTRY_FILE = ROOT / "registry" / "sample_data" / "registry.json"
PRACTICES_FILE = ROOT / "practices" / "sample_data" / "practices.json"
VISITS_FILE = ROOT / "practices" / "sample_data" / "study_visits.json"
EVERY_COUNTRY = "EU"  # the hub's country: the whole sample

Document = dict[str, Any]


@dataclass(frozen=True)
class Sample:
    registry: Document
    practices: Document
    study_visits: Document


def load(country: str | None = None) -> Sample:
    """The sample files; only `country`'s records when it names one (not the EU)."""
    whole = Sample(
        registry=_read(REGISTRY_FILE),
        practices=_read(PRACTICES_FILE),
        study_visits=_read(VISITS_FILE),
    )
    return whole if country in (None, EVERY_COUNTRY) else for_country(whole, country)


def _read(path: Path) -> Document:
    document: Document = json.loads(path.read_text(encoding="utf-8"))
    return document


def for_country(sample: Sample, country: str) -> Sample:
    organisations = [o for o in sample.registry["organisations"] if o.get("country") == country]
    kept = {o["ref"] for o in organisations}
    names = {o["ref"]: o["name"] for o in sample.registry["organisations"]}
    protocols = [
        p
        for p in sample.registry.get("protocols", [])
        if p.get("country") == country
        or all(party.get("organisation_ref") in kept for party in p.get("parties", []))
    ]
    practices = [
        {**p, "organisations": [_link(o, kept, names) for o in p.get("organisations", [])]}
        for p in sample.practices["practices"]
        if p.get("country") == country
    ]
    practice_refs = {p["ref"] for p in practices}
    visits = [
        _visit(v, kept, names, practice_refs)
        for v in sample.study_visits["study_visits"]
        if v.get("organising_authority", {}).get("ref") in kept
    ]
    return Sample(
        registry={**sample.registry, "organisations": organisations, "protocols": protocols},
        practices={**sample.practices, "practices": practices},
        study_visits={**sample.study_visits, "study_visits": visits},
    )


def _link(link: dict[str, Any], kept: set[str], names: dict[str, str]) -> dict[str, Any]:
    """A link to a body this node does not hold becomes a link to its name."""
    ref = link.get("ref")
    if ref is None or ref in kept or ref not in names:
        return link
    return {"name": names[ref]} | {k: v for k, v in link.items() if k != "ref"}


def _visit(
    visit: dict[str, Any], kept: set[str], names: dict[str, str], practice_refs: set[str]
) -> dict[str, Any]:
    out = {**visit, "organising_authority": _link(visit["organising_authority"], kept, names)}
    if "host_organisations" in visit:
        out["host_organisations"] = [_link(o, kept, names) for o in visit["host_organisations"]]
    if "delegation" in visit:
        out["delegation"] = [
            {**member, "home_organisation": _link(member["home_organisation"], kept, names)}
            if member.get("home_organisation")
            else member
            for member in visit["delegation"]
        ]
    if "observed_practice_refs" in visit:
        out["observed_practice_refs"] = [
            r for r in visit["observed_practice_refs"] if r in practice_refs
        ]
    return out


def as_bytes(document: Document) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode()


# --- loading it, and the sample accounts ----------------------------------------------------

SAMPLE_AUTHOR = "practitioner@example.org"
SAMPLE_ACCOUNTS = (
    ("admin@example.org", "Sample National Point administrator", UserRole.admin),
    (SAMPLE_AUTHOR, "Sample practitioner", UserRole.practitioner),
)


def load_sample(country: str | None) -> None:
    """Import the sample (`country`'s part on a national node), and make the sample accounts
    with a new password, shown once, if the node has no account yet. Safe to repeat."""
    from practices import transfer as practice_transfer
    from practices.study_visits import transfer as visit_transfer
    from registry import transfer

    by = system_principal("sample-data")
    data = load(country)
    if country and country != EVERY_COUNTRY:
        out.print(f"sample data of {country} only (INTEGRA_COUNTRY)")
    rows = transfer.read_rows(as_bytes(data.registry), "json")
    report_sample(
        "registry", run_in_session(lambda s: transfer.import_rows(s, rows, by=by, is_sample=True))
    )
    password = run_in_session(first_sample_accounts)
    rows = practice_transfer.read_practice_rows(as_bytes(data.practices), "json")
    report_sample(
        "practices",
        run_in_session(
            # The sample's texts are vetted: its loader confirms they name no person.
            lambda s: practice_transfer.import_practices(
                s, rows, by=by, is_sample=True, confirmed=True
            )
        ),
    )

    async def _visits(session: AsyncSession) -> ImportReport:
        author = await session.scalar(select(User.id).where(User.email == SAMPLE_AUTHOR))
        visit_rows = visit_transfer.read_study_visit_rows(as_bytes(data.study_visits))
        return await visit_transfer.import_study_visits(
            session, visit_rows, by=by, author_id=author, is_sample=True, confirmed=True
        )

    report_sample("study-visit reports", run_in_session(_visits))
    if password:
        out.print(
            "sample accounts (password shown once): admin@example.org, "
            f"{SAMPLE_AUTHOR} — password [bold]{password}[/bold]"
        )


def report_sample(what: str, report: ImportReport) -> None:
    if report.errors:
        for e in report.errors:
            err.print(f"sample {what} row {e.row} {e.what}: {e.reason}", highlight=False)
        raise fail(f"the sample {what} did not load cleanly")
    out.print(
        f"sample {what}: {report.created} added, {report.updated} updated, "
        f"{report.unchanged} already present"
    )


async def first_sample_accounts(session: AsyncSession) -> str | None:
    """The sample accounts with a new password, if the node has no account yet."""
    if await session.scalar(select(User.id).limit(1)) is not None:
        return None
    password = secrets.token_urlsafe(12)
    await set_sample_accounts(session, password)
    return password


async def set_sample_accounts(session: AsyncSession, password: str) -> None:
    """Create the sample accounts with this password, or give it to them if they exist."""
    for email, name, role in SAMPLE_ACCOUNTS:
        user = await session.scalar(select(User).where(User.email == email))
        if user is None:
            session.add(
                User(email=email, name=name, role=role, password_hash=hash_password(password))
            )
        elif not verify_password(user.password_hash, password):
            user.password_hash = hash_password(password)
            user.updated_at = utcnow()
