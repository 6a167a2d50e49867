"""Who did something to a case: a person of an organisation, or one of the services."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    subject: str
    organisation: str

    @property
    def signature(self) -> str:
        """How a record names who wrote it, e.g. ``kemi (E09000025)``."""
        return f"{self.subject} ({self.organisation})"


RISK_SERVICE = Actor("risk rules", "upstream-risk")
PARTNERS_SERVICE = Actor("partner routing", "upstream-partners")
REFERRALS_SERVICE = Actor("referrals", "upstream-referrals")
