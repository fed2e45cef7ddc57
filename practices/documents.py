"""What the index sees of a practice: the same document for every search adapter."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from practices.models import Practice
from practices.search.port import IndexDocument
from registry.models import Organisation


def organisation_names(session: Session, practice: Practice) -> list[str]:
    ids = [o.organisation_id for o in practice.organisations if o.organisation_id]
    names: dict[object, str] = {}
    if ids:
        stmt = select(Organisation.id, Organisation.name).where(Organisation.id.in_(ids))
        names = {org_id: name for org_id, name in session.execute(stmt)}
    return [o.name or names.get(o.organisation_id, "") for o in practice.organisations]


def index_document(session: Session, practice: Practice) -> IndexDocument:
    titles = [practice.title, practice.original_title or ""]
    titles += [t["title"] for t in practice.translations]
    body = [
        practice.summary,
        practice.description or "",
        practice.problem_addressed or "",
        practice.rationale or "",
        practice.lessons_learned or "",
        practice.transferability or "",
        *[t.get("summary") or "" for t in practice.translations],
        *organisation_names(session, practice),
    ]
    languages = [practice.language, *[t["language"] for t in practice.translations]]
    facets = {
        "country": [practice.country] if practice.country else [],
        "kind": [practice.kind],
        "evaluation_type": [practice.evaluation_type],
        "language": languages,
        "licence": [practice.licence],
        "intervention_type": practice.terms_of("intervention_type"),
        "setting": practice.terms_of("setting"),
        "target_group": practice.terms_of("target_group"),
        "process_focus": practice.terms_of("process_focus"),
    }
    published = practice.published_at.date() if practice.published_at else None
    return IndexDocument(
        record_id=practice.id,
        title=practice.title,
        title_text=" \n".join(titles),
        body_text=" \n".join(body),
        sort_date=practice.start_date or published,
        facets=facets,
    )
