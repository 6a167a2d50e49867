"""The unit of work every referrals use case takes."""

from __future__ import annotations

from dataclasses import dataclass

from services.referrals.adapters.lanes import outreach_cases
from services.referrals.settings import ReferralsSettings
from shared.messaging.outbox import remembered
from shared.unit_of_work import UnitOfWork

# Asked once per case in a process: a case's origin never changes.
_OUTREACH_CASES = remembered(outreach_cases)


@dataclass
class ReferralsUnitOfWork(UnitOfWork[ReferralsSettings]):
    """Session, outbox, settings, clock and ids: the referrals service needs nothing more.
    The events of outreach cases are bulk work (``adapters/lanes.py``)."""

    def __post_init__(self) -> None:
        self.outbox = self.outbox.with_bulk_keys(_OUTREACH_CASES)

    def event_type(self) -> str | None:
        """The type of the event being applied, for logs; None outside a handler."""
        return self.event.type if self.event is not None else None
