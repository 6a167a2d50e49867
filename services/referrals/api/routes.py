"""The referrals service's HTTP routes."""

from __future__ import annotations

from services.referrals.api import audit, cases, referrals, residents

routers = [referrals.router, cases.router, residents.router, audit.router]
