"""The audit trail of reads, for a council's information-governance team: a search and an
export (`shared/audit_routes.py`). Use cases: ``service_layer/audit.py``."""

from __future__ import annotations

from services.partners.api.deps import PartnersWork
from services.partners.service_layer import audit
from shared.audit_routes import audit_router
from shared.auth import InformationGovernance

router = audit_router(
    service="partners",
    governance=InformationGovernance,
    work=PartnersWork,
    trail=audit.audit_trail,
    export=audit.audit_export,
)
