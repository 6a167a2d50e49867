"""What the referrals worker sweeps: consents that have expired, which stop routing just as
a withdrawal does (``service_layer/cases.py``)."""

from __future__ import annotations

from services.referrals.service_layer.cases import expire_consents
from services.referrals.service_layer.retention import sweep_retention
from shared.service import Timer

TIMERS = [
    Timer("consent expiry", expire_consents, every_seconds=30.0),
    # retention: residents whose cases ended long ago, old exports and audit rows
    Timer("retention", sweep_retention, every_seconds=3600.0),
]
