"""The composition root of the referrals service."""

from __future__ import annotations

import services.referrals as package
from services.referrals.adapters.tables import metadata
from services.referrals.api.routes import routers
from services.referrals.handlers import EVENT_HANDLERS
from services.referrals.reporting_handlers import REPORTING_GROUP, REPORTING_HANDLERS
from services.referrals.service_layer.unit_of_work import ReferralsUnitOfWork
from services.referrals.settings import ReferralsSettings
from services.referrals.timers import TIMERS
from services.referrals.web.routes import router as reporting_pages
from shared.messaging.consumer import ConsumerSpec
from shared.service import ServiceDefinition

SERVICE = ServiceDefinition(
    name="referrals",
    description=package.__doc__ or "",
    package="services.referrals",
    settings_class=ReferralsSettings,
    metadata=metadata,
    unit_of_work=ReferralsUnitOfWork,
    routers=[*routers, reporting_pages],  # the council's reporting pages (web/)
    consumers=[
        ConsumerSpec("referrals", EVENT_HANDLERS),
        # The reporting model, a projection of its own (reporting_handlers.py).
        ConsumerSpec(REPORTING_GROUP, REPORTING_HANDLERS),
    ],
    timers=TIMERS,
)
