"""The unit of work every referrals use case takes."""

from __future__ import annotations

from dataclasses import dataclass

from services.referrals.settings import ReferralsSettings
from shared.unit_of_work import UnitOfWork


@dataclass
class ReferralsUnitOfWork(UnitOfWork[ReferralsSettings]):
    """Session, outbox, settings, clock and ids: the referrals service needs nothing more."""

    def event_type(self) -> str | None:
        """The type of the event being applied, for logs; None outside a handler."""
        return self.event.type if self.event is not None else None
