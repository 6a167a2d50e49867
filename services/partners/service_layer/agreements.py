"""Data-sharing agreements between one council and one partner organisation: recorded,
listed and ended early by operators and by the council's information-governance team (its
own council's only). Routing reads them (``domain/routing.py``); every change is kept in
``agreement_changes`` (who, when, why, and the terms as they then stood).

An agreement stops new offers to that partner for that council when it ends, by its end
date passing (routing checks the date itself, every time it routes: no timer) or by being
ended early here. Offers already made are not withdrawn: the partner keeps what it was
lawfully sent and can answer them and record outcomes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.partners.adapters import agreements as store
from services.partners.adapters import directory as directory_store
from services.partners.domain.routing import PACKET_CATEGORIES, DataCategory
from services.partners.service_layer.placement import offer_waiting
from services.partners.service_layer.unit_of_work import PartnersUnitOfWork
from shared.errors import Conflict, Forbidden, Invalid, NotFound
from shared.input_policy import IsoDate
from shared.vocabulary import GSS_CODE, LawfulBasis, Need

# -- commands --------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AgreementTerms(_Strict):
    """An agreement as recorded with a new organisation: everything but the partner."""

    council: Annotated[str, Field(pattern=GSS_CODE.pattern, description="the council's GSS code")]
    reference: str = Field(
        min_length=1, max_length=200, description="the agreement's own reference"
    )
    needs: list[Need] = Field(min_length=1, description="the needs it covers")
    data_categories: list[DataCategory] = Field(
        default=sorted(PACKET_CATEGORIES),
        min_length=1,
        description="the categories of personal data it lets the council send: identity "
        "(first name, age), contact (one route, language, accessibility), needs (needs, "
        "urgency, summary). Routing sends all three",
    )
    special_category: bool = Field(
        default=False,
        description="whether it allows special category data (UK GDPR Article 9): cases "
        "whose need is health or safeguarding (mental health, physical health and "
        "disability, domestic abuse)",
    )
    lawful_bases: list[LawfulBasis] = Field(
        min_length=1,
        description="the bases it covers, consent included: a case goes only to a partner "
        "whose agreement with its council covers the case's basis",
    )
    starts_on: IsoDate
    ends_on: IsoDate | None = Field(default=None, description="the last day it covers")

    @model_validator(mode="after")
    def _ends_after_it_starts(self) -> AgreementTerms:
        if self.ends_on is not None and self.ends_on < self.starts_on:
            raise ValueError("ends_on must not be before starts_on")
        return self


class NewAgreement(AgreementTerms):
    organization_id: uuid.UUID = Field(description="the partner organisation")


@dataclass(frozen=True)
class Manager:
    """Who manages agreements: an operator, every council's; a council's information-
    governance team, its own council's only."""

    subject: str
    organisation: str
    is_operator: bool

    def may_manage(self, council: str) -> bool:
        return self.is_operator or self.organisation == council

    @property
    def council(self) -> str | None:
        """The council whose agreements it sees (None: every council)."""
        return None if self.is_operator else self.organisation


@dataclass(frozen=True)
class AgreementChange:
    change: str  # created | ended | migrated
    at: datetime
    by: str
    reason: str | None


@dataclass(frozen=True)
class AgreementView:
    id: str
    organization_id: str
    organization_name: str
    council: str
    reference: str
    needs: list[str]
    data_categories: list[str]
    special_category: bool
    lawful_bases: list[str]
    starts_on: date
    ends_on: date | None
    ended_at: datetime | None
    end_reason: str | None
    recorded_by: str
    in_force: bool
    history: list[AgreementChange]


def _today(uow: PartnersUnitOfWork, now: datetime) -> date:
    return now.astimezone(ZoneInfo(uow.settings.working_time_zone)).date()


def _view(
    uow: PartnersUnitOfWork, row: dict[str, Any], history: list[dict[str, Any]] | None = None
) -> AgreementView:
    now = uow.now()
    return AgreementView(
        id=row["id"],
        organization_id=row["organization_id"],
        organization_name=row["organization_name"],
        council=row["council"],
        reference=row["reference"],
        needs=list(row["needs"]),
        data_categories=list(row["data_categories"]),
        special_category=row["special_category"],
        lawful_bases=list(row["lawful_bases"]),
        starts_on=row["starts_on"],
        ends_on=row["ends_on"],
        ended_at=row["ended_at"],
        end_reason=row["end_reason"],
        recorded_by=row["recorded_by"],
        in_force=store.as_terms(row).in_force(now, _today(uow, now)),
        history=[
            AgreementChange(
                change=h["change"],
                at=h["at"],
                by=f"{h['by_subject']} ({h['by_organisation']})",
                reason=h["reason"],
            )
            for h in history or []
        ],
    )


def _terms_json(terms: AgreementTerms) -> dict[str, Any]:
    return terms.model_dump(mode="json")


# -- use cases -------------------------------------------------------------------------------


async def record_agreement(
    uow: PartnersUnitOfWork, manager: Manager, organization_id: str, terms: AgreementTerms
) -> str:
    """Inside the caller's transaction: the agreement, and its ``created`` change; needs
    waiting or unroutable for its needs, in its council's cases, are tried again (it may let
    them in). Its id."""
    if not manager.may_manage(terms.council):
        raise Forbidden("an information-governance team records its own council's agreements")
    session, now = uow.session, uow.now()
    if not await directory_store.organization_exists(session, organization_id):
        raise Invalid("organization_id", "no such organization")
    agreement_id = uow.new_id()
    values = _terms_json(terms)
    recorded_by = f"{manager.subject} ({manager.organisation})"
    if not await store.add(
        session,
        agreement_id,
        {
            **values,
            "starts_on": terms.starts_on,
            "ends_on": terms.ends_on,
            "organization_id": organization_id,
            "recorded_by": recorded_by,
            "created_at": now,
            "updated_at": now,
        },
    ):
        raise Conflict(
            f"this partner already holds agreement {terms.reference} with {terms.council}"
        )
    await store.record_change(
        session,
        uow.new_id(),
        agreement_id=agreement_id,
        change="created",
        by_subject=manager.subject,
        by_organisation=manager.organisation,
        terms=values,
        at=now,
    )
    # only this council's needs: an agreement with it lets no other council's case in
    await offer_waiting(uow, [need.value for need in terms.needs], now=now, council=terms.council)
    return agreement_id


async def add_agreement(uow: PartnersUnitOfWork, manager: Manager, command: NewAgreement) -> str:
    """A new agreement between a council and a partner organisation; its id."""
    terms = AgreementTerms.model_validate(command.model_dump(exclude={"organization_id"}))
    async with uow.transaction():
        return await record_agreement(uow, manager, str(command.organization_id), terms)


async def list_agreements(
    uow: PartnersUnitOfWork,
    manager: Manager,
    *,
    council: str | None = None,
    organization_id: str | None = None,
) -> list[AgreementView]:
    """The agreements the manager may see (an IG team: its council's), of one council and
    one organisation if given, newest first."""
    if council is not None and not manager.may_manage(council):
        raise Forbidden("an information-governance team sees its own council's agreements")
    async with uow.snapshot():
        rows = await store.listing(
            uow.session, council=council or manager.council, organization_id=organization_id
        )
    return [_view(uow, row) for row in rows]


async def _visible(
    uow: PartnersUnitOfWork, manager: Manager, agreement_id: str, *, for_update: bool = False
) -> dict[str, Any]:
    row = await store.get(uow.session, agreement_id, for_update=for_update)
    if row is None or not manager.may_manage(row["council"]):
        raise NotFound("agreement not found")
    return row


async def agreement(uow: PartnersUnitOfWork, manager: Manager, agreement_id: str) -> AgreementView:
    """One agreement with what happened to it."""
    async with uow.snapshot():
        row = await _visible(uow, manager, agreement_id)
        history = await store.changes(uow.session, agreement_id)
    return _view(uow, row, history)


async def end_agreement(
    uow: PartnersUnitOfWork, manager: Manager, agreement_id: str, reason: str
) -> AgreementView:
    """Ended early, now: no new offer goes to that partner for that council under it.
    Offers already made are not withdrawn. Refused if it has already ended."""
    async with uow.transaction():
        session, now = uow.session, uow.now()
        row = await _visible(uow, manager, agreement_id, for_update=True)
        terms = store.as_terms(row)
        if terms.ended_at is not None or (
            terms.ends_on is not None and terms.ends_on < _today(uow, now)
        ):
            raise Conflict("the agreement has already ended", "ended", ())
        await store.end(session, agreement_id, at=now, reason=reason)
        await store.record_change(
            session,
            uow.new_id(),
            agreement_id=agreement_id,
            change="ended",
            by_subject=manager.subject,
            by_organisation=manager.organisation,
            reason=reason,
            terms={
                "council": row["council"],
                "reference": row["reference"],
                "ended_at": now.isoformat(),
            },
            at=now,
        )
        # a need of this council's waiting for this partner's place is handed on (or goes
        # back to the council)
        await offer_waiting(uow, list(row["needs"]), now=now, council=row["council"])
        row = await _visible(uow, manager, agreement_id)
        history = await store.changes(session, agreement_id)
    return _view(uow, row, history)
