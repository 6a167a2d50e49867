"""When erasure (UK GDPR Article 17) does not apply: the exemptions of Article 17(3) as
Upstream meets them. Pure: the caller gives each case's status, needs and its offers'
statuses (docs/information-governance.md, Erasure).

A resident's data is not erased while the council is still acting on it:

- an open case with a safeguarding concern (a domestic abuse need, or assessed or referred
  as a crisis): the council's safeguarding duties (Care Act 2014 s.42, Children Act 1989
  s.47) are a legal obligation and a task in the public interest, Article 17(3)(b); and
- an open case with a live offer (offered, accepted or in progress): a partner is helping
  the resident now on the council's behalf, Article 17(3)(b) as well.

Either way the answer says which, and what to do: close or withdraw the case, then ask
again. Closed and withdrawn cases, and open cases with neither, are erased."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from services.referrals.domain.lifecycle import OPEN_STATUSES, CaseStatus
from shared.vocabulary import Need, OfferStatus

LIVE_OFFERS = frozenset({OfferStatus.OFFERED, OfferStatus.ACCEPTED, OfferStatus.IN_PROGRESS})
CRISIS = "crisis"


@dataclass(frozen=True)
class CaseFacts:
    status: str
    needs: tuple[str, ...]
    urgency: str | None
    risk_level: str | None
    offer_statuses: tuple[str, ...]


SAFEGUARDING = (
    "an open case has a safeguarding concern (a domestic abuse need or a crisis): the "
    "council's safeguarding duties are a legal obligation and a public task (UK GDPR "
    "Article 17(3)(b)); close or withdraw the case first"
)
LIVE_OFFER = (
    "an open case has a live offer with a partner (offered, accepted or in progress): the "
    "council is acting on it (UK GDPR Article 17(3)(b)); close or withdraw the case first"
)


def refusal(cases: Iterable[CaseFacts]) -> str | None:
    """Why erasure does not apply to this resident now; None: it does."""
    open_cases = [c for c in cases if CaseStatus(c.status) in OPEN_STATUSES]
    if any(
        Need.DOMESTIC_ABUSE.value in c.needs or CRISIS in (c.urgency, c.risk_level)
        for c in open_cases
    ):
        return SAFEGUARDING
    if any(LIVE_OFFERS.intersection(OfferStatus(s) for s in c.offer_statuses) for c in open_cases):
        return LIVE_OFFER
    return None
