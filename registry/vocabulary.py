"""Controlled vocabularies of the registry, in the report's own terms.

Values are stable machine codes (they travel in exports and filters); labels are what people read.
"""

from enum import StrEnum


class OrganisationKind(StrEnum):
    police = "police"
    prison_administration = "prison_administration"
    probation = "probation"
    prosecution_court = "prosecution_court"
    social_services = "social_services"
    health_services = "health_services"
    education = "education"
    employment_training = "employment_training"
    faith_organisation = "faith_organisation"
    ngo = "ngo"
    community_actor = "community_actor"
    municipality = "municipality"
    academia = "academia"
    security_intelligence = "security_intelligence"
    training_centre = "training_centre"
    international_organisation = "international_organisation"
    multi_agency_mechanism = "multi_agency_mechanism"
    other = "other"


class Sector(StrEnum):
    governmental = "governmental"
    ngo = "ngo"
    private = "private"
    public_private = "public_private"


class Level(StrEnum):
    local = "local"
    regional = "regional"
    national = "national"
    international = "international"


class Area(StrEnum):
    rehabilitation = "rehabilitation"
    disengagement = "disengagement"
    deradicalisation = "deradicalisation"
    reintegration = "reintegration"
    risk_assessment = "risk_assessment"
    prevention = "prevention"
    after_care = "after_care"
    family_support = "family_support"
    training = "training"
    coordination = "coordination"
    information_sharing = "information_sharing"
    research = "research"
    victim_support = "victim_support"
    education = "education"
    employment = "employment"
    housing = "housing"
    health_care = "health_care"
    mental_health = "mental_health"
    legal_aid = "legal_aid"
    faith_counselling = "faith_counselling"
    supervision = "supervision"


class TargetGroup(StrEnum):
    adults = "adults"
    juveniles_young_adults = "juveniles_young_adults"
    women = "women"
    first_time_offenders = "first_time_offenders"
    returnees_and_families = "returnees_and_families"
    families = "families"
    prisoners = "prisoners"
    pre_trial_detainees = "pre_trial_detainees"
    probationers = "probationers"
    released_prisoners = "released_prisoners"
    foreign_nationals = "foreign_nationals"
    victims = "victims"
    communities = "communities"
    practitioners = "practitioners"


class OrganisationStatus(StrEnum):
    active = "active"
    inactive = "inactive"
    archived = "archived"


class ContactStatus(StrEnum):
    active = "active"
    archived = "archived"


class PhoneType(StrEnum):
    landline = "landline"
    mobile = "mobile"
    helpline = "helpline"
    fax = "fax"


class PartyRole(StrEnum):
    lead = "lead"
    coordinator = "coordinator"
    party = "party"
    observer = "observer"


class MeetingFrequency(StrEnum):
    weekly = "weekly"
    monthly = "monthly"
    quarterly = "quarterly"
    twice_yearly = "twice_yearly"
    annual = "annual"
    as_needed = "as_needed"


class ProtocolStatus(StrEnum):
    draft = "draft"
    in_force = "in_force"
    under_review = "under_review"
    expired = "expired"
    terminated = "terminated"
    archived = "archived"
