from __future__ import annotations

import json
from datetime import time
from typing import Annotated, Any, ClassVar

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from shared.settings import Environment, ServiceSettings

DEVELOPMENT_TOMBSTONE_SECRET = "upstream-development-only-tombstone-secret"


class PartnersSettings(ServiceSettings):
    service_name: ClassVar[str] = "partners"
    default_http_port: ClassVar[int] = 8003

    # How long a partner has to answer an offer, by urgency (domain/offers.py). Urgencies in
    # response_hours count clock hours (crisis: 4 hours, whatever the day); the others count
    # working hours: high one working day (8), medium three (24), low five (40).
    response_hours: dict[str, float] = Field(
        default={"crisis": 4}, description="clock hours, by urgency (any time of day)"
    )
    response_working_hours: dict[str, float] = Field(
        default={"high": 8, "medium": 24, "low": 40, "none": 40},
        description="working hours, by urgency, for the urgencies not in response_hours",
    )
    follow_up_working_hours: dict[str, float] = Field(
        default={"crisis": 8, "high": 16, "medium": 40, "low": 80, "none": 80},
        description="working hours after an acceptance or a progress note by which an offer "
        "must show progress or an outcome; past it, it is overdue",
    )
    working_day_start: time = time(9)
    working_day_end: time = time(17)
    working_days: list[int] = Field(
        default=[0, 1, 2, 3, 4], description="0 is Monday: Monday to Friday"
    )
    working_time_zone: str = "Europe/London"
    bank_holidays_country: str | None = Field(
        default="GB", description="the `holidays` package's calendar; empty for none"
    )
    bank_holidays_subdivision: str | None = Field(
        default="ENG", description="England and Wales' bank holidays"
    )
    gap_waiting_working_days: float = Field(
        default=2,
        gt=0,
        description="a need waiting this many working days for a place is a gap in service "
        "(gap.detected); a working day is working_day_start to working_day_end",
    )
    tombstone_secret: SecretStr = Field(
        default=SecretStr(DEVELOPMENT_TOMBSTONE_SECRET),
        description="keys the hashes of erased case ids (shared/erasure.py), so the service "
        "remembers what it erased without holding the ids; its own secret (never the JWT "
        "signing key); the development default is refused elsewhere",
    )
    max_offers_per_need: int = Field(default=5, ge=1, description="then back to the council")
    # Retention (docs/information-governance.md, Retention): swept hourly, in batches.
    retention_ended_offer_days: int = Field(
        default=365,
        ge=1,
        description="a declined, expired or withdrawn offer (and its deliveries) is deleted "
        "this long after it ended, once its need is no longer being routed",
    )
    partner_inbox_closed_days: int = Field(
        default=90,
        ge=1,
        description="the partner inbox lists offers closed (outcome recorded) this many days "
        "back; an older one is still shown by its id",
    )
    retention_sign_in_days: int = Field(
        default=30,
        ge=1,
        description="a sign-in link or web session (a partner's staff e-mail address, when "
        "and to which organisation) is deleted this long after it expired",
    )
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

    # -- the web inbox (services/partners/web) ---------------------------------------------
    sign_in_link_minutes: float = Field(default=15, gt=0, description="a sign-in link's life")
    sign_in_requests_per_window: int = Field(
        default=5, ge=1, description="links one address may ask for per window"
    )
    sign_in_window_minutes: float = Field(default=15, gt=0)
    web_session_hours: float = Field(default=8, gt=0, description="a web session's life")
    web_cookie_secure: bool = Field(
        default=True,
        description="the session cookie is Secure (sent over https only; browsers also "
        "send it to http://localhost). Refused off outside development",
    )

    # -- email notifications ----------------------------------------------------------------
    mail_backend: str = Field(
        default="smtp", pattern="^(smtp|notify)$", description="smtp, or GOV.UK Notify"
    )
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=8025, ge=1, le=65535)
    smtp_tls: str = Field(
        default="none",
        pattern="^(none|starttls|tls)$",
        description="none (development only), starttls, or tls (implicit, port 465)",
    )
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    mail_sender: str = "Upstream <no-reply@upstream.invalid>"
    notify_api_key: SecretStr | None = None
    notify_template_id: str | None = Field(
        default=None, description="a Notify email template with ((subject)) and ((body))"
    )
    notify_base_url: str = Field(
        default="https://api.notifications.service.gov.uk",
        description="the GOV.UK Notify API (the client's base_url); https outside development",
    )
    mail_max_attempts: int = Field(default=6, ge=1)
    reminder_hours_before: float = Field(
        default=1.0, gt=0, description="a reminder this long before an offer's deadline"
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

    @model_validator(mode="after")
    def _links_and_mail_protected_outside_development(self) -> PartnersSettings:
        if self.environment is Environment.DEVELOPMENT:
            return self
        if not self.public_base_url.startswith("https://"):
            raise ValueError(
                "UPSTREAM_PUBLIC_BASE_URL must be an https:// address outside development: "
                "partners' sign-in links and offer links point at it"
            )
        if self.mail_backend == "smtp" and self.smtp_tls == "none":
            raise ValueError(
                "UPSTREAM_SMTP_TLS=none is for development only: sign-in links and the SMTP "
                "password would cross the network in clear (use starttls or tls)"
            )
        return self

    @model_validator(mode="after")
    def _notify_complete_and_over_https(self) -> PartnersSettings:
        if self.mail_backend != "notify":
            return self
        if not (self.notify_api_key and self.notify_api_key.get_secret_value()) or not (
            self.notify_template_id
        ):
            raise ValueError(
                "UPSTREAM_MAIL_BACKEND=notify needs UPSTREAM_NOTIFY_API_KEY and "
                "UPSTREAM_NOTIFY_TEMPLATE_ID"
            )
        if self.environment is not Environment.DEVELOPMENT and not (
            self.notify_base_url.startswith("https://")
        ):
            raise ValueError(
                "UPSTREAM_NOTIFY_BASE_URL must be an https:// address outside development: "
                "each request carries a token signed with the API key"
            )
        return self

    @model_validator(mode="after")
    def _insecure_cookies_only_in_development(self) -> PartnersSettings:
        if self.environment is not Environment.DEVELOPMENT and not self.web_cookie_secure:
            raise ValueError("UPSTREAM_WEB_COOKIE_SECURE=false is for development only")
        return self
