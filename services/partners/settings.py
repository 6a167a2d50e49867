from __future__ import annotations

import json
from typing import Annotated, Any, ClassVar

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode

from shared.settings import Environment, ServiceSettings


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
        default=False,
        description="development only (refused elsewhere): webhooks may be http and may go "
        "to loopback (a receiver on this machine); otherwise https to public addresses only",
    )
    webhook_allowed_private_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="host names (or addresses) of on-premises partners whose webhooks may go "
        "to private or shared addresses (RFC 1918, fc00::/7, 100.64/10); never to loopback, "
        "link-local, multicast or unspecified ones. Comma-separated or a JSON list",
    )
    webhook_max_attempts: int = Field(default=8, ge=1)
    webhook_timeout_seconds: float = Field(default=5.0, gt=0)
    public_base_url: str = Field(
        default="http://127.0.0.1:8003",
        description="where partners reach this service (inbox links)",
    )

    @field_validator("webhook_allowed_private_hosts", mode="before")
    @classmethod
    def _hosts_from_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [host.strip() for host in text.split(",") if host.strip()]
        return value

    @model_validator(mode="after")
    def _http_webhooks_only_in_development(self) -> PartnersSettings:
        if self.allow_http_webhooks and self.environment is not Environment.DEVELOPMENT:
            raise ValueError(
                f"UPSTREAM_ALLOW_HTTP_WEBHOOKS is refused in {self.environment.value}: "
                "it lets webhooks go over http and to loopback, for development only"
            )
        return self
