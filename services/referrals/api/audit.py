"""The audit trail of reads, for a council's information-governance team: a search and an
export (`shared/audit_routes.py`). Use cases: ``service_layer/audit.py``."""

from __future__ import annotations

from services.referrals.api.deps import ReferralsWork
from services.referrals.service_layer import audit
from shared.audit_routes import audit_router
from shared.auth import InformationGovernance

router = audit_router(
    service="referrals",
    governance=InformationGovernance,
    work=ReferralsWork,
    trail=audit.audit_trail,
    export=audit.audit_export,
)
