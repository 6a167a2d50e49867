"""The composition root of the partners service."""

from __future__ import annotations

import services.partners as package
from services.partners.adapters.tables import metadata
from services.partners.api.routes import routers
from services.partners.handlers import EVENT_HANDLERS
from services.partners.service_layer.unit_of_work import PartnersUnitOfWork
from services.partners.settings import PartnersSettings
from services.partners.timers import TIMERS
from shared.messaging.consumer import ConsumerSpec
from shared.service import ServiceDefinition

SERVICE = ServiceDefinition(
    name="partners",
    description=package.__doc__ or "",
    package="services.partners",
    settings_class=PartnersSettings,
    metadata=metadata,
    unit_of_work=PartnersUnitOfWork,
    routers=routers,
    consumers=[ConsumerSpec("partners", EVENT_HANDLERS)],
    timers=TIMERS,
)
