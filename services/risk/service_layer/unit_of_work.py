"""The risk service's unit of work: the shared one, with the ruleset in force."""

from __future__ import annotations

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
        return await self.rulesets.current(self.session)

    @property
    def resident_key_secret(self) -> str:
        return self.settings.resident_key_secret.get_secret_value()
