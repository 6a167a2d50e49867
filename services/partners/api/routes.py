"""The partners service's HTTP routes."""

from __future__ import annotations

from services.partners.api import directory, gaps, inbox, public
from services.partners.web.routes import router as web_inbox

routers = [public.router, directory.router, inbox.router, gaps.router, web_inbox]
