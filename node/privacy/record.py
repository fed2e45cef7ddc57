"""The record of processing activities of this node (GDPR art. 30; Directive (EU) 2016/680
art. 24), generated from its data model and its configuration, so it says what the node does
rather than what someone once wrote: the personal data of each activity are the columns each
domain declares personal (`PERSONAL_DATA` of node.core.privacy, registry.privacy,
practices.privacy), their retention the periods in effect, what goes to the hub the shareable
projection's fields (federation.projection: never personal data).
"""

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from federation.projection import SCHEMAS
from node.core import privacy as kernel
from node.core.db import utcnow
from node.core.settings import Settings
from practices import privacy as practices_privacy
from practices.needs import privacy as needs_privacy
from registry import privacy as registry_privacy

LEGAL_BASIS = (
    "the National Point's task in the public interest (GDPR art. 6(1)(e)), laid down in the "
    "national act designating it; for processing by competent authorities for the purposes of "
    "Directive (EU) 2016/680, its art. 8 and the national law transposing it"
)
SECURITY = [
    "personal data never leave the node: the feed carries only the shareable projection of "
    "practices and study-visit reports, an allow-list of fields, after the personal-data gate "
    "(names the node knows, e-mail addresses, phone numbers, identity numbers, ...) and the "
    "publisher's confirmation",
    "contact points and study-visit participants are shown to signed-in users only; every read "
    "of a contact point is audited",
    "passwords hashed with Argon2; API tokens stored as keyed hashes (HMAC-SHA-256), expiring",
    "roles (administrator, editor, practitioner) and editors limited to their organisations",
    "an audit log of every write and of reads of personal data, holding ids and counts, never "
    "the data",
    "every shared record signed (Ed25519) in an append-only log; an erased person's shared "
    "bodies purged at the node, the hub and every mirror by a signed redaction",
    "deleted content overwritten (SQLite secure_delete), the full-text index and the write-ahead "
    "log scrubbed after an erasure",
    "retention periods applied automatically (below)",
]


def _days(period: timedelta) -> str:
    return "kept until erased on request" if not period else f"{period.days} days"


def record(settings: Settings) -> dict[str, Any]:
    """The record, as data (`markdown` renders it)."""
    federates = bool(settings.country)
    retention = {
        "audit_entry": settings.retention_audit_entries,
        "contact_point": settings.retention_unverified_contacts,
        "study_visit.participant": settings.retention_visit_participants,
        "api_token": settings.retention_expired_tokens,
        "user_account": settings.retention_disabled_accounts,
    }
    activities = [
        {
            "name": "National Registration Database: contact points",
            "purpose": "putting agencies, NGOs and bodies working on the rehabilitation, "
            "disengagement and reintegration of offenders in touch with each other",
            "data_subjects": ["staff of the registered organisations (contact points)"],
            "data": _columns(registry_privacy.PERSONAL_DATA),
            "recipients": ["signed-in users of this node (professionals)"],
            "retention": f"{_days(retention['contact_point'])} without verification",
        },
        {
            "name": "User accounts and access",
            "purpose": "signing in, authorising and tracing the work of the node's users",
            "data_subjects": ["users of the node (National Point staff, editors, practitioners)"],
            "data": _columns(
                {
                    k: kernel.PERSONAL_DATA[k]
                    for k in ("user_account", "api_token", "password_reset", "sign_in_attempt")
                }
            ),
            "recipients": ["the node's administrators"],
            "retention": (
                f"accounts: {_days(retention['user_account'])} after being disabled; "
                f"tokens: {_days(retention['api_token'])} after expiry or revocation"
            ),
        },
        {
            "name": "Audit log",
            "purpose": "accountability: who changed or read which record, and when "
            "(Directive (EU) 2016/680 art. 25)",
            "data_subjects": ["users of the node", "the operator at the console"],
            "data": _columns({"audit_entry": kernel.PERSONAL_DATA["audit_entry"]}),
            "recipients": ["the node's administrators", "the supervisory authority on request"],
            "retention": _days(retention["audit_entry"]),
        },
        {
            "name": "Study-visit reports",
            "purpose": "reporting study visits and their recommendations to policy bodies",
            "data_subjects": ["participants of study visits", "authors and reviewers of reports"],
            "data": _columns(practices_privacy.PERSONAL_DATA),
            "recipients": ["signed-in users of this node"],
            "retention": f"participants' names: {_days(retention['study_visit.participant'])} "
            "after the visit",
        },
        {
            "name": "Needs heard",
            "purpose": "knowing what practitioners and agencies need (training, tools, guidance, "
            "cooperation) to plan support; only counts of needs of three organisations or more "
            "are shared, never their text",
            "data_subjects": ["the users who record needs", "anyone a need's text may name"],
            "data": _columns(needs_privacy.PERSONAL_DATA),
            "recipients": ["the node's administrators", "members of the recording organisation"],
            "retention": "for as long as the need is kept; erased on request",
        },
        {
            "name": "Practice database (free text)",
            "purpose": "collecting and sharing practices, policies, tools and training kits",
            "data_subjects": ["none intended: the gate and the publisher keep persons out"],
            "data": ["free text, checked for personal data before it is shared"],
            "recipients": ["anyone (public records)", "professionals of the network"],
            "retention": "for as long as the record is kept; erased on request",
        },
    ]
    shared = {kind: sorted(schema.model_fields) for kind, schema in sorted(SCHEMAS.items())}
    return {
        "title": "Record of processing activities",
        "generated_at": utcnow().isoformat(),
        "controller": {
            "node": f"National Point of {settings.country}" if federates else "this node",
            "country": settings.country,
            "role": settings.role.value,
        },
        "legal_basis": LEGAL_BASIS,
        "activities": activities,
        "recipients_outside_the_node": {
            "hub": "the EU hub and, through it, the other National Points: the shareable "
            "projection of published practices and study-visit reports only, never personal "
            "data (participants as counts, never names)"
            if federates
            else "none: this node does not federate (no country set)",
            "shared_fields": shared if federates else {},
            "third_countries": "none",
        },
        "retention": {kind: _days(period) for kind, period in retention.items()},
        "retention_applied_every": str(settings.retention_interval),
        "security_measures": SECURITY,
        "data_subject_rights": "access and erasure through `integra privacy find|export|erase` "
        "and /api/v1/privacy (administrators), every request audited by its reference",
    }


def _columns(personal: Mapping[str, tuple[str, ...]]) -> list[str]:
    return [f"{table}.{column}" for table, columns in personal.items() for column in columns]


def markdown(data: dict[str, Any]) -> str:
    lines = [
        f"# {data['title']}",
        "",
        f"Generated {data['generated_at']} from the node's data model and configuration.",
        "",
        "## Controller",
        "",
        f"- {data['controller']['node']} (role: {data['controller']['role']})",
        f"- Legal basis: {data['legal_basis']}",
        "",
        "## Processing activities",
    ]
    for activity in data["activities"]:
        lines += [
            "",
            f"### {activity['name']}",
            "",
            f"- Purpose: {activity['purpose']}",
            f"- Data subjects: {'; '.join(activity['data_subjects'])}",
            f"- Personal data: {', '.join(activity['data'])}",
            f"- Recipients: {'; '.join(activity['recipients'])}",
            f"- Retention: {activity['retention']}",
        ]
    outside = data["recipients_outside_the_node"]
    lines += ["", "## Recipients outside the node", "", f"- Hub: {outside['hub']}"]
    for kind, fields in outside["shared_fields"].items():
        lines.append(f"- Fields of a shared {kind}: {', '.join(fields)}")
    lines.append(f"- Transfers to third countries: {outside['third_countries']}")
    lines += ["", "## Retention", ""]
    lines += [f"- {kind}: {period}" for kind, period in data["retention"].items()]
    lines.append(f"- Applied every {data['retention_applied_every']}")
    lines += ["", "## Security measures", ""]
    lines += [f"- {measure}" for measure in data["security_measures"]]
    lines += ["", "## Data subjects' rights", "", data["data_subject_rights"], ""]
    return "\n".join(lines)
