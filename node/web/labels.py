"""What people read for the vocabularies' codes, as catalogue messages (translated where shown).

One table for the practice database's and the registry's vocabularies: a page spans both, and
one catalogue per language holds every label. `tests/web/test_catalogues.py` checks that every
code of these vocabularies has a label and every label a translation.
"""

import re
from enum import StrEnum

from node.web.i18n import N_
from practices.vocabulary import (
    EvaluationType,
    Ideology,
    InterventionType,
    Licence,
    OrganisationRole,
    OutcomeRating,
    PracticeKind,
    ProcessFocus,
    RecommendationStatus,
    ReportStatus,
    ReviewLabel,
    Setting,
)
from registry.vocabulary import (
    Area,
    Level,
    MeetingFrequency,
    OrganisationKind,
    PartyRole,
    ProtocolStatus,
    Sector,
    TargetGroup,
)

LABELS: dict[type[StrEnum], dict[str, str]] = {
    PracticeKind: {
        "practice": N_("Practice"),
        "policy": N_("Policy"),
        "tool": N_("Tool"),
        "training_kit": N_("Training kit"),
        "guide": N_("Guide"),
    },
    InterventionType: {
        "psychological_support": N_("Psychological support"),
        "cognitive_behavioural": N_("Cognitive-behavioural programme"),
        "social_work": N_("Social work"),
        "faith_based_dialogue": N_("Faith-based dialogue"),
        "education": N_("Education"),
        "vocational_training": N_("Vocational training"),
        "creative_arts_therapy": N_("Creative arts therapy"),
        "sport": N_("Sport"),
        "family_support": N_("Family support"),
        "social_cultural_recreational": N_("Social, cultural and recreational activities"),
        "mentoring": N_("Mentoring"),
        "exit_programme": N_("Exit programme"),
        "risk_needs_assessment": N_("Risk and needs assessment"),
        "multi_agency_case_management": N_("Multi-agency case management"),
        "staff_training": N_("Staff training"),
        "after_care": N_("After-care"),
        "employment_housing_support": N_("Employment and housing support"),
        "counter_narratives": N_("Counter-narratives"),
        "other": N_("Other"),
    },
    ProcessFocus: {
        "deradicalisation": N_("Deradicalisation"),
        "disengagement": N_("Disengagement"),
        "rehabilitation_reintegration": N_("Rehabilitation and reintegration"),
        "prevention": N_("Prevention"),
    },
    Setting: {
        "prison": N_("Prison"),
        "pre_trial_detention": N_("Pre-trial detention"),
        "probation": N_("Probation"),
        "community": N_("Community"),
        "post_release": N_("After release"),
        "juvenile_justice": N_("Juvenile justice"),
    },
    Ideology: {
        "islamist": N_("Islamist"),
        "right_wing": N_("Right-wing"),
        "left_wing": N_("Left-wing"),
        "ethno_nationalist_separatist": N_("Ethno-nationalist or separatist"),
        "single_issue": N_("Single issue"),
        "other": N_("Other"),
    },
    OrganisationRole: {
        "responsible": N_("Responsible"),
        "partner": N_("Partner"),
        "funder": N_("Funder"),
    },
    EvaluationType: {
        "none": N_("No evaluation"),
        "internal_monitoring": N_("Internal monitoring"),
        "process_evaluation": N_("Process evaluation"),
        "outcome_evaluation": N_("Outcome evaluation"),
        "quasi_experimental": N_("Quasi-experimental study"),
        "experimental": N_("Experimental study"),
    },
    OutcomeRating: {
        "effective": N_("Effective"),
        "promising": N_("Promising"),
        "inconclusive": N_("Inconclusive"),
        "no_effect": N_("No effect"),
        "negative_effect": N_("Negative effect"),
    },
    ReviewLabel: {
        "self_reported": N_("Self-reported"),
        "peer_reviewed": N_("Peer-reviewed"),
    },
    Licence: {
        "CC-BY-4.0": N_("Creative Commons Attribution 4.0"),
        "CC-BY-SA-4.0": N_("Creative Commons Attribution-ShareAlike 4.0"),
        "CC0-1.0": N_("Public domain (CC0 1.0)"),
        "all-rights-reserved": N_("All rights reserved"),
    },
    TargetGroup: {
        "adults": N_("Adults"),
        "juveniles_young_adults": N_("Juveniles and young adults"),
        "women": N_("Women"),
        "first_time_offenders": N_("First-time offenders"),
        "returnees_and_families": N_("Returnees and their families"),
        "families": N_("Families"),
        "prisoners": N_("Prisoners"),
        "pre_trial_detainees": N_("Pre-trial detainees"),
        "probationers": N_("People on probation"),
        "released_prisoners": N_("Released prisoners"),
        "foreign_nationals": N_("Foreign nationals"),
        "victims": N_("Victims"),
        "communities": N_("Communities"),
        "practitioners": N_("Practitioners"),
    },
    OrganisationKind: {
        "police": N_("Police"),
        "prison_administration": N_("Prison administration"),
        "probation": N_("Probation service"),
        "prosecution_court": N_("Prosecution or court"),
        "social_services": N_("Social services"),
        "health_services": N_("Health services"),
        "education": N_("Education"),
        "employment_training": N_("Employment and training"),
        "faith_organisation": N_("Faith organisation"),
        "ngo": N_("NGO"),
        "community_actor": N_("Community actor"),
        "municipality": N_("Municipality"),
        "academia": N_("Academia"),
        "security_intelligence": N_("Security or intelligence service"),
        "training_centre": N_("Training centre"),
        "international_organisation": N_("International organisation"),
        "multi_agency_mechanism": N_("Multi-agency mechanism"),
        "other": N_("Other"),
    },
    Sector: {
        "governmental": N_("Governmental"),
        "ngo": N_("Non-governmental"),
        "private": N_("Private"),
        "public_private": N_("Public-private"),
    },
    Level: {
        "local": N_("Local"),
        "regional": N_("Regional"),
        "national": N_("National"),
        "international": N_("International"),
    },
    Area: {
        "rehabilitation": N_("Rehabilitation"),
        "disengagement": N_("Disengagement"),
        "deradicalisation": N_("Deradicalisation"),
        "reintegration": N_("Reintegration"),
        "risk_assessment": N_("Risk assessment"),
        "prevention": N_("Prevention"),
        "after_care": N_("After-care"),
        "family_support": N_("Family support"),
        "training": N_("Training"),
        "coordination": N_("Coordination"),
        "information_sharing": N_("Information sharing"),
        "research": N_("Research"),
        "victim_support": N_("Victim support"),
        "education": N_("Education"),
        "employment": N_("Employment"),
        "housing": N_("Housing"),
        "health_care": N_("Health care"),
        "mental_health": N_("Mental health"),
        "legal_aid": N_("Legal aid"),
        "faith_counselling": N_("Faith counselling"),
        "supervision": N_("Supervision"),
    },
    PartyRole: {
        "lead": N_("Lead"),
        "coordinator": N_("Coordinator"),
        "party": N_("Party"),
        "observer": N_("Observer"),
    },
    MeetingFrequency: {
        "weekly": N_("Weekly"),
        "monthly": N_("Monthly"),
        "quarterly": N_("Quarterly"),
        "twice_yearly": N_("Twice a year"),
        "annual": N_("Once a year"),
        "as_needed": N_("As needed"),
    },
    ProtocolStatus: {
        "draft": N_("Draft"),
        "in_force": N_("In force"),
        "under_review": N_("Under review"),
        "expired": N_("Expired"),
        "terminated": N_("Terminated"),
        "archived": N_("Archived"),
    },
    ReportStatus: {
        "draft": N_("Draft"),
        "submitted": N_("Submitted for review"),
        "changes_requested": N_("Changes requested"),
        "published": N_("Published"),
        "withdrawn": N_("Withdrawn"),
    },
    RecommendationStatus: {
        "received": N_("Received"),
        "under_consideration": N_("Under consideration"),
        "accepted": N_("Accepted"),
        "implemented": N_("Implemented"),
        "declined": N_("Declined"),
    },
}

# Kinds of the EU pool's records that are not practices: the pool's `kind` facet counts a
# study-visit report by its record type.
RECORD_KINDS: dict[str, str] = {"study_visit": N_("Study-visit report")}

# The search facets whose values are codes of a vocabulary (country and language are named
# by Babel's locale data instead).
FACET_VOCABULARY: dict[str, type[StrEnum]] = {
    "kind": PracticeKind,
    "intervention_type": InterventionType,
    "setting": Setting,
    "target_group": TargetGroup,
    "process_focus": ProcessFocus,
    "evaluation_type": EvaluationType,
    "licence": Licence,
}


# Each vocabulary by its class name, for the templates (`vocab(Setting, code)`).
VOCABULARIES: dict[str, type[StrEnum]] = {vocabulary.__name__: vocabulary for vocabulary in LABELS}


def label(vocabulary: type[StrEnum], code: str) -> str:
    """The untranslated label of a code (its msgid); an unknown code reads as itself."""
    labels = LABELS[vocabulary]
    if str(code) not in labels and vocabulary is PracticeKind:
        return RECORD_KINDS.get(str(code), str(code))
    return labels.get(str(code), str(code))


# --- the service's own words: audit entries and the federation's refusals ----------------

AUDIT_ACTIONS = {
    "create": N_("created"),
    "update": N_("changed"),
    "read": N_("read"),
    "submit": N_("submitted for review"),
    "publish": N_("published"),
    "withdraw": N_("withdrawn"),
    "request-changes": N_("changes requested"),
    "comment": N_("commented"),
    "scope": N_("sharing scope changed"),
    "archive": N_("archived"),
    "erase": N_("erased"),
    "release": N_("released from the review queue"),
    "export": N_("exported"),
    "retention": N_("removed at the end of its retention period"),
    "privacy_export": N_("personal data exported on request"),
    "privacy_erase": N_("personal data erased on request"),
    "login": N_("signed in"),
    "login_failed": N_("failed sign-in"),
    "token_issue": N_("access token issued"),
    "token_revoke": N_("access token revoked"),
    "password_change": N_("password changed"),
    "password_reset": N_("password reset through a link"),
    "reset_link_issue": N_("password reset link issued"),
    "key_create": N_("signing key created"),
    "key_rotate": N_("signing key rotated"),
    "key_confirm": N_("key confirmed"),
    "key_rotation_held": N_("key rotation waiting for confirmation"),
    "key_rotation_refused": N_("key rotation refused"),
    "enrol": N_("node enrolled"),
    "revoke": N_("key revoked"),
    "ignore": N_("ignored"),
}
AUDIT_RECORDS = {
    "practice": N_("Practice"),
    "study_visit": N_("Study-visit report"),
    "organisation": N_("Organisation"),
    "contact_point": N_("Contact point"),
    "protocol": N_("Cooperation protocol"),
    "user": N_("User"),
    "node_key": N_("Signing key of this node"),
    "peer": N_("Enrolled node"),
    "peer_key": N_("Key of an enrolled node"),
    "privacy_request": N_("Request about personal data"),
    "privacy": N_("Personal data"),
}
AUDIT_DETAILS = {
    "version": N_("Version"),
    "fields": N_("Fields"),
    "status": N_("Status"),
    "previous": N_("Before"),
    "reason": N_("Reason"),
    "justification": N_("Justification"),
    "hold": N_("Entry of the review queue"),
    "origin": N_("Origin"),
    "role": N_("Role"),
    "url": N_("Address"),
    "count": N_("Number"),
    "organisations": N_("Organisations"),
}
# The federation's refusals and sync errors (English, from the services), by what they say:
# the first pattern found gives the sentence a reader is shown; the text itself stays beside
# it as the technical detail.
REFUSALS = [
    (
        (
            r"ConnectError|ReadError|WriteError|RemoteProtocolError|NetworkError|"
            r"connection (refused|reset)|connection attempts failed|Name or service not known"
        ),
        N_("The node could not be reached at its address."),
    ),
    (r"Timeout|too slow", N_("The node did not answer in time.")),
    (r"answered [45]\d\d", N_("The node answered with an error.")),
    (
        r"feed waits here|awaiting confirmation",
        N_("Signed by a new key not confirmed yet: the feed waits here."),
    ),
    (r"not enrolled here", N_("Signed by a key this hub does not know.")),
    (r"after its revocation", N_("Signed by a revoked key.")),
    (r"outside the validity window", N_("Signed outside its key's period of validity.")),
    (
        r"signature does not match|signature is not valid",
        N_("The signature does not match: altered in transit or forged."),
    ),
    (r"altered in transit", N_("The content is not the one signed: altered in transit.")),
    (r"sequence .* was due|not an integer", N_("An entry is missing or out of order in the feed.")),
    (r"a replay of version", N_("An earlier version sent again.")),
    (r"already held with other content", N_("The same version with different content.")),
    (r"^personal data", N_("It looks like personal data.")),
    (r"withheld", N_("Withheld: its origin removed this record's contents.")),
    (
        r"namespace|in the feed of|a node the hub's directory does not list",
        N_("A record of another node."),
    ),
    (
        r"not the federation schema|exactly the fields|unknown|not an envelope|carries",
        N_("Not in the federation's format."),
    ),
    (
        r"process syncing this peer stopped|ran past its limit",
        N_("The sync stopped before its end; it is tried again."),
    ),
    (r"database is locked|OperationalError", N_("The database was busy; it is tried again.")),
]
OTHER_REFUSAL = N_("Refused (see the technical detail).")
_REFUSALS = [(re.compile(pattern, re.IGNORECASE), message) for pattern, message in REFUSALS]


def refusal(reason: str | None) -> str:
    """The untranslated sentence (msgid) for a refusal or sync error of the federation."""
    for pattern, message in _REFUSALS:
        if pattern.search(reason or ""):
            return message
    return OTHER_REFUSAL
