"""When a case may go to a voluntary partner, what goes, and how urgent it is."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from shared.vocabulary import LawfulBasis, Need, Outcome, RiskLevel


@dataclass(frozen=True)
class ConsentRecord:
    given_at: datetime
    expires_at: datetime | None
    withdrawn_at: datetime | None
    partner_kinds: tuple[str, ...]


@dataclass(frozen=True)
class SharingDecision:
    allowed: bool
    reason: str


def may_share_with_partners(
    basis: LawfulBasis,
    consent: ConsentRecord | None,
    *,
    data_sharing_agreement: str | None,
    now: datetime,
) -> SharingDecision:
    """Consent (current, not withdrawn) or vital interests allow sharing; public task only
    under a named data-sharing agreement; a legal obligation is the council's own duty and
    never a reason to share with a charity."""
    if basis is LawfulBasis.CONSENT:
        if consent is None:
            return SharingDecision(False, "consent is the basis but none is recorded")
        if consent.withdrawn_at is not None:
            return SharingDecision(False, "the resident withdrew consent")
        if consent.expires_at is not None and consent.expires_at <= now:
            return SharingDecision(False, "the resident's consent has expired")
        return SharingDecision(True, "the resident consented to sharing with partners")
    if basis is LawfulBasis.VITAL_INTERESTS:
        return SharingDecision(True, "shared to protect the resident's vital interests")
    if basis is LawfulBasis.PUBLIC_TASK and data_sharing_agreement:
        return SharingDecision(True, f"public task under agreement {data_sharing_agreement}")
    return SharingDecision(
        False,
        f"{basis.value.replace('_', ' ')} does not allow sharing with a voluntary partner "
        "without the resident's consent",
    )


# -- justified bases ---------------------------------------------------------------------

# Needs whose mere mention is health data, special category under UK GDPR Article 9: mental
# health, and physical health and disability. Domestic abuse is safeguarding (handled with
# care everywhere) but not by itself special category data; see docs/referrals.md.
SPECIAL_CATEGORY_NEEDS = frozenset({Need.MENTAL_HEALTH, Need.PHYSICAL_HEALTH_AND_DISABILITY})


class Article9Condition(StrEnum):
    """The UK GDPR Article 9(2) conditions a council relies on for health data."""

    EXPLICIT_CONSENT = "explicit_consent"  # 9(2)(a)
    SOCIAL_PROTECTION = "social_protection"  # 9(2)(b): employment, social security law
    VITAL_INTERESTS = "vital_interests"  # 9(2)(c): the resident cannot consent
    SUBSTANTIAL_PUBLIC_INTEREST = "substantial_public_interest"  # 9(2)(g), DPA 2018 Sch 1
    HEALTH_OR_SOCIAL_CARE = "health_or_social_care"  # 9(2)(h)


@dataclass(frozen=True)
class BasisClaim:
    """A lawful basis as a referrer or caseworker states it."""

    basis: LawfulBasis
    justification: str | None = None
    decided_by: str | None = None
    article9_condition: Article9Condition | None = None


def special_category_needs(needs: Iterable[str]) -> list[str]:
    return [n for n in needs if n in SPECIAL_CATEGORY_NEEDS]


def basis_problems(
    claim: BasisClaim, needs: Iterable[str], *, prefix: str = ""
) -> list[tuple[str, str]]:
    """What is missing for this basis to stand, as (field, reason): any basis other than
    consent needs a justification and the person who decided it; health needs (special
    category data) need an Article 9 condition, which consent given for them is (explicit
    consent) when none is named."""
    problems: list[tuple[str, str]] = []
    if claim.basis is not LawfulBasis.CONSENT:
        words = claim.basis.value.replace("_", " ")
        if not claim.justification:
            problems.append((f"{prefix}justification", f"required: why {words} applies"))
        if not claim.decided_by:
            problems.append((f"{prefix}decided_by", f"required: who decided that {words} applies"))
    special = special_category_needs(needs)
    if special and claim.article9_condition is None and claim.basis is not LawfulBasis.CONSENT:
        problems.append(
            (
                f"{prefix}article9_condition",
                "required: "
                + ", ".join(n.replace("_", " ") for n in special)
                + " is special category data (UK GDPR Article 9)",
            )
        )
    return problems


def article9_condition_for(claim: BasisClaim, needs: Iterable[str]) -> Article9Condition | None:
    """The condition recorded: the one named, or explicit consent for health needs shared
    on the resident's consent; none when no need is special category."""
    if not special_category_needs(needs):
        return claim.article9_condition
    if claim.article9_condition is None and claim.basis is LawfulBasis.CONSENT:
        return Article9Condition.EXPLICIT_CONSENT
    return claim.article9_condition


PRIORITY = {level: level.rank for level in RiskLevel}  # none 0 … crisis 4


def priority(urgency: RiskLevel, risk_level: RiskLevel | None) -> int:
    """The higher of what the referrer saw and what the rules found."""
    return max(PRIORITY[urgency], PRIORITY[risk_level] if risk_level else 0)


# When needs end differently, the case's outcome is the best of them, in this order.
_OUTCOME_ORDER = list(Outcome)


def case_outcome(outcomes: Iterable[Outcome]) -> Outcome | None:
    ordered = sorted(outcomes, key=_OUTCOME_ORDER.index)
    return ordered[0] if ordered else None


def summary(needs: Iterable[str], circumstances: Iterable[str], urgency: RiskLevel) -> str:
    """The partner's one-line summary: structured facts only, never the referrer's free text
    (which may hold health or other details the partner does not need)."""
    need_words = ", ".join(n.replace("_", " ") for n in needs) or "support"
    facts = "; ".join(c.replace("_", " ") for c in circumstances)
    text = f"Needs {need_words}. Urgency: {urgency.value}."
    return f"{text} Circumstances: {facts}." if facts else text
