"""What the risk worker sweeps: signals long expired and old audit rows (retention)."""

from __future__ import annotations

from services.risk.service_layer.retention import sweep_retention
from shared.service import Timer

TIMERS = [Timer("retention", sweep_retention, every_seconds=3600.0)]
