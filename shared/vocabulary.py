"""The words every service shares, kept in one place (see the handbook's domain.md)."""

from __future__ import annotations

import re
from enum import StrEnum

# A council is named by its GSS code (E06…, E07…, E08…, E09… for England; W, S, N for the
# other nations; K for wider areas), e.g. E09000025 for Newham.
GSS_CODE = re.compile(r"^[ENSWK][0-9]{8}$")


class Need(StrEnum):
    FOOD = "food"
    MONEY_AND_DEBT = "money_and_debt"
    BENEFITS = "benefits"
    HOUSING = "housing"
    FUEL_AND_UTILITIES = "fuel_and_utilities"
    MENTAL_HEALTH = "mental_health"
    PHYSICAL_HEALTH_AND_DISABILITY = "physical_health_and_disability"
    SOCIAL_ISOLATION = "social_isolation"
    DIGITAL_INCLUSION = "digital_inclusion"
    EMPLOYMENT_AND_SKILLS = "employment_and_skills"
    DOMESTIC_ABUSE = "domestic_abuse"  # safeguarding: handled with special care
    IMMIGRATION_ADVICE = "immigration_advice"
    CARERS_SUPPORT = "carers_support"
    CHILDREN_AND_FAMILIES = "children_and_families"


# Needs whose mere mention is special category data (UK GDPR Article 9) or safeguarding.
SENSITIVE_NEEDS = frozenset(
    {Need.MENTAL_HEALTH, Need.PHYSICAL_HEALTH_AND_DISABILITY, Need.DOMESTIC_ABUSE}
)


class RiskLevel(StrEnum):
    NONE = "none"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRISIS = "crisis"

    @property
    def rank(self) -> int:
        return list(RiskLevel).index(self)


class Circumstance(StrEnum):
    """Structured facts a referrer can state about the household."""

    NO_FOOD_IN_HOME = "no_food_in_home"
    CHILDREN_IN_HOUSEHOLD = "children_in_household"
    NO_HEATING_OR_POWER = "no_heating_or_power"
    AT_RISK_OF_EVICTION = "at_risk_of_eviction"
    HOMELESS = "homeless"
    RECENT_BEREAVEMENT = "recent_bereavement"
    RECENT_JOB_LOSS = "recent_job_loss"
    LIVES_ALONE = "lives_alone"
    CARER = "carer"
    RECENT_HOSPITAL_DISCHARGE = "recent_hospital_discharge"


class LawfulBasis(StrEnum):
    """UK GDPR Article 6 bases a case can rest on."""

    CONSENT = "consent"
    PUBLIC_TASK = "public_task"
    VITAL_INTERESTS = "vital_interests"
    LEGAL_OBLIGATION = "legal_obligation"


class PartnerKind(StrEnum):
    """Kinds of organisation a resident may consent to their referral going to."""

    FOOD = "food"
    ADVICE = "advice"  # money, debt, benefits, immigration
    HOUSING = "housing"
    HEALTH_AND_WELLBEING = "health_and_wellbeing"
    COMMUNITY = "community"
    ANY_VOLUNTARY = "any_voluntary"


class ContactMethod(StrEnum):
    PHONE = "phone"
    TEXT = "text"
    EMAIL = "email"
    LETTER = "letter"
    IN_PERSON = "in_person"


class OfferStatus(StrEnum):
    """Where an offer to a partner stands; the partners service owns the transitions
    (``services/partners/domain/offers.py``), the referrals service mirrors them per case."""

    OFFERED = "offered"
    ACCEPTED = "accepted"
    IN_PROGRESS = "in_progress"
    OUTCOME_RECORDED = "outcome_recorded"
    DECLINED = "declined"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"


class DeclineReason(StrEnum):
    NO_CAPACITY = "no_capacity"
    NOT_ELIGIBLE = "not_eligible"
    RESIDENT_DECLINED = "resident_declined"
    OTHER = "other"


class Outcome(StrEnum):
    SUPPORT_PROVIDED = "support_provided"
    PARTLY_RESOLVED = "partly_resolved"
    RESIDENT_UNCONTACTABLE = "resident_uncontactable"
    RESIDENT_DECLINED_SUPPORT = "resident_declined_support"
    REFERRED_ON = "referred_on"
    NOT_ELIGIBLE = "not_eligible"
    SERVICE_UNAVAILABLE = "service_unavailable"  # no funding or capacity
