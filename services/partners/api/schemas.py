"""The HTTP bodies and answers of the partners API. Directory bodies are the service layer's
commands (validated the same way over HTTP and on ORUK import), named for the API here."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from services.partners.service_layer.agreements import NewAgreement
from services.partners.service_layer.directory import (
    MAX_PAUSE_REASON,
    NewOrganization,
    ServiceDetails,
    Strict,
)
from services.partners.service_layer.offers import MAX_NOTE
from shared.vocabulary import DeclineReason, Need, OfferStatus, Outcome

# -- inbox -----------------------------------------------------------------------------------


class Offer(BaseModel):
    id: str
    case_id: str
    need: Need
    service_id: str
    service_name: str
    status: OfferStatus
    respond_by: datetime
    outcome: Outcome | None = None
    packet: dict[str, Any] | None = Field(
        default=None, description="what the partner needs to contact and help the resident"
    )
    routing_reasons: list[str] | None = Field(
        default=None,
        description="why this offer came to this partner: the checks its service passed and "
        "the ranking factors, in plain words",
    )
    follow_up_by: datetime | None = Field(
        default=None,
        description="accepted or in progress: when progress or an outcome is next due",
    )
    overdue: bool = Field(
        default=False, description="accepted or in progress, and past its follow-up deadline"
    )


class DeclineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: DeclineReason
    note: str | None = Field(default=None, max_length=MAX_NOTE)


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(default=None, max_length=MAX_NOTE)


class OutcomeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: Outcome
    note: str | None = Field(default=None, max_length=MAX_NOTE)


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: HttpUrl


class Webhook(BaseModel):
    url: str
    secret: str = Field(description="shown once: keep it to verify signatures")
    previous_secret_valid_until: datetime | None = None


class DeliveryRecord(BaseModel):
    id: str
    event: str
    offer_id: str | None
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    next_attempt_at: datetime


# -- directory -------------------------------------------------------------------------------


class OrganizationIn(NewOrganization):
    pass


# -- data-sharing agreements -----------------------------------------------------------------


class AgreementIn(NewAgreement):
    pass


class EndAgreementIn(Strict):
    reason: str = Field(min_length=1, max_length=500, description="why it ends early")


class AgreementChange(BaseModel):
    change: str = Field(description="created, ended, or migrated (revision 0008)")
    at: datetime
    by: str = Field(description="who: subject (organisation)")
    reason: str | None = None


class Agreement(BaseModel):
    """A data-sharing agreement between one council and one partner organisation."""

    id: str
    organization_id: str
    organization_name: str
    council: str
    reference: str
    needs: list[Need]
    data_categories: list[str]
    special_category: bool
    lawful_bases: list[str]
    starts_on: date
    ends_on: date | None = Field(description="the last day it covers")
    ended_at: datetime | None = Field(description="when it was ended early, if it was")
    end_reason: str | None
    recorded_by: str
    in_force: bool = Field(description="whether it covers new offers now")
    history: list[AgreementChange] = Field(
        default=[], description="what happened to it (one agreement's view only)"
    )


class ServiceIn(ServiceDetails):
    pass


class PauseIn(Strict):
    reason: str = Field(min_length=1, max_length=MAX_PAUSE_REASON)


class Created(BaseModel):
    id: str


class ServiceLoad(BaseModel):
    id: str
    name: str
    paused: bool
    capacity: int
    open_offers_and_referrals: int


class ImportReport(BaseModel):
    organizations: int
    services: int
    skipped: list[str]
    ignored: list[str] = Field(
        default=[], description="parts of imported services not read (e.g. monthly schedules)"
    )


class Gap(BaseModel):
    council: str
    need: str
    reason: str
    cases: int
    status: str = Field(
        default="unroutable",
        description="unroutable (no service could take it), or waiting (every service that "
        "could is full or paused)",
    )
    since: datetime | None = Field(default=None, description="the oldest case here since")


class OverdueCount(BaseModel):
    council: str
    partner_id: str
    offers: int = Field(description="accepted or in-progress offers past their follow-up")


class InboxAddresses(BaseModel):
    """The addresses that may sign in to a partner's web inbox and receive its emails."""

    model_config = ConfigDict(extra="forbid")
    addresses: list[str] = Field(max_length=50, description="email addresses")
