from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from shared.settings import ServiceSettings


class PartnersSettings(ServiceSettings):
    service_name: ClassVar[str] = "partners"
    default_http_port: ClassVar[int] = 8003

    # How long a partner has to answer an offer, by urgency (hours): crisis 4 hours, high one
    # working day, medium three, low five.
    response_hours: dict[str, float] = Field(
        default={"crisis": 4, "high": 24, "medium": 72, "low": 120, "none": 120}
    )
    max_offers_per_need: int = Field(default=5, ge=1, description="then back to the council")
    allow_http_webhooks: bool = Field(
        default=False, description="development only: webhooks must be https otherwise"
    )
    webhook_max_attempts: int = Field(default=8, ge=1)
    webhook_timeout_seconds: float = Field(default=5.0, gt=0)
    public_base_url: str = Field(
        default="http://127.0.0.1:8003",
        description="where partners reach this service (inbox links)",
    )
