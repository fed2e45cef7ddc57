"""What a data-subject request's export says, readable: one section per kind of place."""

import json
from typing import Any

TITLES = {
    "user": "Accounts",
    "api_token": "API tokens",
    "audit_entry": "Audit log entries",
    "contact_point": "Contact points",
    "organisation": "Organisations (text)",
    "protocol": "Cooperation protocols (text)",
    "protocol_party": "Parties to protocols (text)",
    "practice": "Practices (text)",
    "practice_organisation": "Bodies named in practices",
    "study_visit": "Study-visit reports (text)",
    "study_visit.participant": "Participation in study visits",
    "study_visit.author": "Study-visit reports written",
    "study_visit_comment": "Review comments",
    "gate_hold": "Personal-data gate findings",
    "feed_entry": "Versions of records this node shared",
    "feed_entry.relayed": "Records relayed from other nodes",
    "federated_record": "Records of other nodes kept here (only their origin may erase them)",
    "user_account": "Disabled accounts",
}


def export_markdown(data: dict[str, Any]) -> str:
    person = data["person"]
    named = ", ".join([*person["names"], *person["emails"], *person["phones"]])
    lines = [
        "# Personal data held by this node",
        "",
        f"- Person: {named}",
        f"- Request: {data['request'] or '(none given)'}",
        f"- Node: {data['node']['country'] or '(no country set)'}",
        f"- Generated: {data['generated_at']}",
        f"- Places: {len(data['places'])}",
    ]
    kinds: dict[str, list[dict[str, Any]]] = {}
    for place in data["places"]:
        kinds.setdefault(place["kind"], []).append(place)
    for kind, places in kinds.items():
        lines += ["", f"## {TITLES.get(kind, kind)}", ""]
        for place in places:
            found = f" (found: {', '.join(place['found'])})" if place["found"] else ""
            lines += [f"### {kind} {place['id']} · {place['field']}{found}", ""]
            lines += _value(place["value"])
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _value(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [f"- {key}: {_inline(item)}" for key, item in value.items()]
    if isinstance(value, str):
        return [f"> {line}" for line in value.splitlines() or [""]]
    return [f"- {_inline(value)}"]


def _inline(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, str):
        return value.replace("\n", " ")
    return json.dumps(value, ensure_ascii=False)
