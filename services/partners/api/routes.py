"""The partners service's HTTP routes."""

from __future__ import annotations

from services.partners.api import agreements, audit, directory, gaps, inbox, public
from services.partners.web.routes import router as web_inbox

routers = [
    public.router,
    directory.router,
    agreements.router,
    inbox.router,
    gaps.router,
    audit.router,
    web_inbox,
]
