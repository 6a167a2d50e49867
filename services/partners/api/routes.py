"""The partners service's HTTP routes."""

from __future__ import annotations

from services.partners.api import directory, gaps, inbox, public

routers = [public.router, directory.router, inbox.router, gaps.router]
