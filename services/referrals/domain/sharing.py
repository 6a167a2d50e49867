"""When a case may go to a voluntary partner, what goes, and how urgent it is."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from shared.vocabulary import LawfulBasis, Outcome, RiskLevel


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
