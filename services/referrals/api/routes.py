"""The referrals service's HTTP routes."""

from __future__ import annotations

from services.referrals.api import (
    audit,
    cases,
    erasure,
    referrals,
    reporting,
    residents,
    subject_access,
)

routers = [
    referrals.router,
    cases.router,
    residents.router,
    audit.router,
    subject_access.router,
    erasure.router,
    reporting.router,
]
