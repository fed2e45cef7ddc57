"""The sample data from the INTEGRA report, whole or cut down to one country's node.

A national node keeps its own country's records: its organisations, the protocols between
them, its practices, and the study visits its authorities organised (abroad, mostly). What
those records say about other countries' bodies stays, as names rather than registry refs,
and practices observed abroad are left out: they are the other node's records.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
