"""The composition root of the risk service."""

from __future__ import annotations

import services.risk as package
from services.risk.adapters.tables import metadata
from services.risk.api.routes import routers
from services.risk.handlers import EVENT_HANDLERS
from services.risk.service_layer.rulesets import install_default_ruleset
from services.risk.service_layer.unit_of_work import RiskUnitOfWork
from services.risk.settings import RiskSettings
from services.risk.timers import TIMERS
from shared.messaging.consumer import ConsumerSpec
from shared.service import ServiceDefinition

SERVICE = ServiceDefinition(
    name="risk",
    description=package.__doc__ or "",
    package="services.risk",
    settings_class=RiskSettings,
    metadata=metadata,
    unit_of_work=RiskUnitOfWork,
    routers=routers,
    consumers=[ConsumerSpec("risk", EVENT_HANDLERS)],
    seeds=[install_default_ruleset],
    timers=TIMERS,
)
