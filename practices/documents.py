"""What the index sees of a practice: the same document for every search adapter."""

import uuid
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from typing import Any

from sqlalchemy import String, select, type_coerce
from sqlalchemy.orm import Session

from node.core.memory import collector_paused
from practices.models import Practice, PracticeOrganisation, PracticeTerm
from practices.search.port import IndexDocument
from registry import organisation_labels


def organisation_names(session: Session, practice: "Practice | PracticeView") -> list[str]:
    ids = [o.organisation_id for o in practice.organisations if o.organisation_id]
    names = organisation_labels(session, ids)
    return [
        o.name or (names.get(o.organisation_id, "") if o.organisation_id else "")
        for o in practice.organisations
    ]


@dataclass
class PracticeView:
    """What indexing reads of a practice, loaded in bulk without full ORM objects."""

    id: uuid.UUID
    kind: str
    title: str
    original_title: str | None
    language: str
    summary: str
    description: str | None
    problem_addressed: str | None
    rationale: str | None
    lessons_learned: str | None
    transferability: str | None
    translations: list[Any]
    country: str | None
    evaluation_type: str
    licence: str
    start_date: date | None
    published_at: datetime | None
    terms: list[tuple[str, str]] = field(default_factory=list)
    organisations: list[PracticeOrganisation] = field(default_factory=list)

    def terms_of(self, facet: str) -> list[str]:
        return [value for name, value in self.terms if name == facet]


def load_views(session: Session, ids: list[uuid.UUID]) -> list[PracticeView]:
    """The practices of ``ids`` as indexing reads them, in a few statements through Core (no
    ORM rows); each term's practice matched by the id as the driver gives it, so that no UUID
    is built per term."""
    session.flush()  # Core below: what the session holds unwritten is written first
    with collector_paused():
        return _load_views(session, ids)


def _load_views(session: Session, ids: list[uuid.UUID]) -> list[PracticeView]:
    connection = session.connection()
    columns = [
        getattr(Practice, f.name)
        for f in fields(PracticeView)
        if f.name not in ("terms", "organisations")
    ]
    views = {
        row[0]: PracticeView(*row)
        for row in connection.execute(select(*columns).where(Practice.id.in_(ids))).all()
    }
    # SQLite holds a UUID as its hex digits; psycopg reads a uuid column as a UUID already
    raw = type_coerce(PracticeTerm.practice_id, String)
    sqlite = connection.dialect.name == "sqlite"
    by_raw: dict[Any, list[tuple[str, str]]] = {
        view.id.hex if sqlite else view.id: view.terms for view in views.values()
    }
    for practice_id, facet, value in connection.execute(
        select(raw, PracticeTerm.facet, PracticeTerm.value).where(PracticeTerm.practice_id.in_(ids))
    ).all():
        terms = by_raw.get(practice_id)
        if terms is None:  # written some other way than SQLAlchemy's (another spelling)
            terms = views[uuid.UUID(str(practice_id))].terms
        terms.append((facet, value))
    for link in session.scalars(
        select(PracticeOrganisation)
        .where(PracticeOrganisation.practice_id.in_(ids))
        .order_by(PracticeOrganisation.position)
    ):
        views[link.practice_id].organisations.append(link)
    return list(views.values())


def index_document(session: Session, practice: Practice | PracticeView) -> IndexDocument:
    titles = [practice.title, practice.original_title or ""]
    titles += [t["title"] for t in practice.translations]
    own = [
        practice.summary,
        practice.description or "",
        practice.problem_addressed or "",
        practice.rationale or "",
        practice.lessons_learned or "",
        practice.transferability or "",
        *organisation_names(session, practice),  # as the record names them, in its language
    ]
    translated = [t.get("summary") or "" for t in practice.translations]
    body = [*own[:6], *translated, *own[6:]]
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
        "source": ["local"],
    }
    published = practice.published_at.date() if practice.published_at else None
    texts = [
        (
            practice.language,
            " \n".join([practice.title, practice.original_title or ""]),
            " \n".join(own),
        ),
        *[
            (t["language"], t.get("title") or "", t.get("summary") or "")
            for t in practice.translations
        ],
    ]
    return IndexDocument(
        record_id=practice.id,
        title=practice.title,
        title_text=" \n".join(titles),
        body_text=" \n".join(body),
        sort_date=practice.start_date or published,
        facets=facets,
        texts=tuple(texts),
    )
