"""The risk service's unit of work: the shared one, with the rulesets in force."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from services.risk.domain.rules import Ruleset
from services.risk.service_layer.active_ruleset import ACTIVE_RULESET, ActiveRuleset
from services.risk.settings import RiskSettings
from shared.unit_of_work import UnitOfWork


@dataclass
class RiskUnitOfWork(UnitOfWork[RiskSettings]):
    # Process-wide by default: a loaded ruleset is reused until another one is activated.
    rulesets: ActiveRuleset = field(default_factory=lambda: ACTIVE_RULESET)

    async def ruleset_in_force(self) -> Ruleset:
        """The deployment's default: the rules of every council without its own."""
        return await self.rulesets.current(self.session)

    async def ruleset_for(self, council: str) -> Ruleset:
        """The ruleset in force for a council: its own, else the default."""
        return await self.rulesets.for_council(self.session, council)

    async def rulesets_for(self, councils: Sequence[str]) -> dict[str, Ruleset]:
        """The ruleset in force for each council, found at once."""
        return await self.rulesets.for_councils(self.session, councils)

    @property
    def resident_key_secret(self) -> str:
        return self.settings.resident_key_secret.get_secret_value()
