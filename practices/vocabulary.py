"""Controlled vocabularies of the practice database.

The record follows the RAN Collection of Inspiring Practices template and the EUCPN minimum
criteria for a good practice; outcome ratings follow CrimeSolutions' per-outcome ratings.
"""

from enum import StrEnum


class PracticeKind(StrEnum):
    practice = "practice"
    policy = "policy"
    tool = "tool"
    training_kit = "training_kit"
    guide = "guide"


class InterventionType(StrEnum):
    psychological_support = "psychological_support"
    cognitive_behavioural = "cognitive_behavioural"
    social_work = "social_work"
    faith_based_dialogue = "faith_based_dialogue"
    education = "education"
    vocational_training = "vocational_training"
    creative_arts_therapy = "creative_arts_therapy"
    sport = "sport"
    family_support = "family_support"
    social_cultural_recreational = "social_cultural_recreational"
    mentoring = "mentoring"
    exit_programme = "exit_programme"
    risk_needs_assessment = "risk_needs_assessment"
    multi_agency_case_management = "multi_agency_case_management"
    staff_training = "staff_training"
    after_care = "after_care"
    employment_housing_support = "employment_housing_support"
    counter_narratives = "counter_narratives"
    other = "other"


class ProcessFocus(StrEnum):
    deradicalisation = "deradicalisation"
    disengagement = "disengagement"
    rehabilitation_reintegration = "rehabilitation_reintegration"
    prevention = "prevention"


class Setting(StrEnum):
    prison = "prison"
    pre_trial_detention = "pre_trial_detention"
    probation = "probation"
    community = "community"
    post_release = "post_release"
    juvenile_justice = "juvenile_justice"


class Ideology(StrEnum):
    islamist = "islamist"
    right_wing = "right_wing"
    left_wing = "left_wing"
    ethno_nationalist_separatist = "ethno_nationalist_separatist"
    single_issue = "single_issue"
    other = "other"


class OrganisationRole(StrEnum):
    responsible = "responsible"
    partner = "partner"
    funder = "funder"


class EvaluationType(StrEnum):
    none = "none"
    internal_monitoring = "internal_monitoring"
    process_evaluation = "process_evaluation"
    outcome_evaluation = "outcome_evaluation"
    quasi_experimental = "quasi_experimental"
    experimental = "experimental"


class OutcomeRating(StrEnum):
    effective = "effective"
    promising = "promising"
    inconclusive = "inconclusive"
    no_effect = "no_effect"
    negative_effect = "negative_effect"


class ReviewLabel(StrEnum):
    self_reported = "self_reported"
    peer_reviewed = "peer_reviewed"


class Licence(StrEnum):
    cc_by_4_0 = "CC-BY-4.0"
    cc_by_sa_4_0 = "CC-BY-SA-4.0"
    cc0_1_0 = "CC0-1.0"
    all_rights_reserved = "all-rights-reserved"


class PracticeStatus(StrEnum):
    draft = "draft"
    in_review = "in_review"
    published = "published"
    withdrawn = "withdrawn"


class ReportStatus(StrEnum):
    draft = "draft"
    submitted = "submitted"
    changes_requested = "changes_requested"
    published = "published"
    withdrawn = "withdrawn"


class RecommendationStatus(StrEnum):
    """What became of a study-visit report's recommendation, as its addressee says."""

    received = "received"
    under_consideration = "under_consideration"
    accepted = "accepted"
    implemented = "implemented"
    declined = "declined"
