"""Needs heard: what practitioners and agencies need (training, tools, guidance, protocols,
information sharing, communication, cooperation, staffing), recorded against organisations of
the registry and tagged with the controlled vocabularies.

PUBLIC FACE for the federation: the change topic, and the counts that may be shared (kinds and
terms with how many organisations they come from: never the text, never which organisation).
"""

from sqlalchemy.orm import Session

from practices.needs import privacy as privacy
from practices.needs.service import NEEDS_CHANGED as NEEDS_CHANGED
from practices.needs.service import Cell as Cell
from practices.needs.service import count_cells


def shareable_cells(session: Session) -> list[Cell]:
    """The counts of the needs whose recorder let them be counted in what is shared (a job's
    session): by kind, and by kind, facet and term; each with its number of organisations, so
    the federation can leave out what too few organisations make up."""
    from practices.needs.repository import shared_rows

    return count_cells(shared_rows(session))
