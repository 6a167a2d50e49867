"""The risk service's HTTP routes."""

from __future__ import annotations

from services.risk.api import assessments, audit, rulesets, signals, transparency

routers = [signals.router, assessments.router, rulesets.router, audit.router, transparency.router]
