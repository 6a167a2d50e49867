"""The risk service's HTTP routes."""

from __future__ import annotations

from services.risk.api import assessments, rulesets, signals

routers = [signals.router, assessments.router, rulesets.router]
