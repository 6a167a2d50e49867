"""The unit of work every referrals use case takes."""

from __future__ import annotations

from dataclasses import dataclass

from services.referrals.adapters.lanes import OUTREACH_ORIGIN, outreach_cases
from services.referrals.settings import ReferralsSettings
from shared.messaging.outbox import Remembered
from shared.unit_of_work import UnitOfWork

# Asked once per case in a process: a case's origin never changes.
_OUTREACH_CASES = Remembered(outreach_cases)


@dataclass
class ReferralsUnitOfWork(UnitOfWork[ReferralsSettings]):
    """Session, outbox, settings, clock and ids: the referrals service needs nothing more.
    The events of outreach cases are bulk work (``adapters/lanes.py``)."""

    def __post_init__(self) -> None:
        self.outbox = self.outbox.with_bulk_keys(_OUTREACH_CASES)

    def case_known(self, case_id: str, *, origin: str) -> None:
        """A case this transaction opens, or has read: whether its events are bulk work is
        known by its origin, not asked (``adapters/lanes.py``)."""
        _OUTREACH_CASES.learn(case_id, bulk=origin == OUTREACH_ORIGIN)

    def event_type(self) -> str | None:
        """The type of the event being applied, for logs; None outside a handler."""
        return self.event.type if self.event is not None else None
