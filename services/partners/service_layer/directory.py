"""Directory use cases: operators add partners (with their data-sharing agreements, which
``service_layer/agreements.py`` records); a partner edits its own services and can pause
intake (offers not yet answered are handed on). Import and export in Open Referral UK shape,
the public ORUK reads, and the gaps in service."""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Annotated, Any, Literal, NamedTuple, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from services.partners.adapters import directory as store
from services.partners.adapters import offers as offer_store
from services.partners.adapters import placement as placement_store
from services.partners.domain import offers as lifecycle
from services.partners.domain import oruk
from services.partners.service_layer.agreements import AgreementTerms, Manager, record_agreement
from services.partners.service_layer.placement import (
    offer_freed_place,
    offer_waiting,
    place,
    withdraw_offers,
)
from services.partners.service_layer.unit_of_work import PartnersUnitOfWork
from shared.errors import Forbidden, Invalid, NotFound
from shared.events.payloads import ServiceCapacityChanged
from shared.input_policy import validation_reason
from shared.vocabulary import GSS_CODE, Need, PartnerKind

# -- commands: validated as the HTTP bodies are, and as imported ORUK services are ----------


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class NewOrganization(Strict):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(min_length=1, max_length=2000)
    kind: PartnerKind
    email: str | None = Field(default=None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
    website: HttpUrl | None = None
    agreements: list[AgreementTerms] = Field(
        default=[],
        max_length=50,
        description="its data-sharing agreements, one per council (more can be added later: "
        "POST /v1/agreements)",
    )


class Contact(Strict):
    name: str | None = Field(default=None, max_length=200)
    title: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=254)


class OpeningTimes(Strict):
    """One day's opening hours (local time in the deployment's zone)."""

    day: Literal["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
    opens: time
    closes: time

    @field_validator("opens", "closes")
    @classmethod
    def _local(cls, value: time) -> time:
        if value.tzinfo is not None:
            raise ValueError("a local time, without a zone")
        return value

    @field_validator("closes")
    @classmethod
    def _after_opening(cls, closes: time, info: ValidationInfo) -> time:
        opens = info.data.get("opens")
        if opens is not None and closes <= opens:
            raise ValueError("must be after opens")
        return closes


class ServiceDetails(Strict):
    organization_id: uuid.UUID
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(min_length=1, max_length=4000)
    status: Literal["active", "inactive", "defunct", "temporarily closed"] = "active"
    url: HttpUrl | None = None
    email: str | None = Field(default=None, max_length=254)
    needs: list[Need] = Field(min_length=1)
    councils: list[Annotated[str, Field(pattern=GSS_CODE.pattern)]] = []
    postcode_districts: list[Annotated[str, Field(pattern=r"^[A-Z]{1,2}[0-9][0-9A-Z]?$")]] = []
    minimum_age: int | None = Field(default=None, ge=0, le=120)
    maximum_age: int | None = Field(default=None, ge=0, le=120)
    eligibility_description: str | None = Field(default=None, max_length=1000)
    languages: list[Annotated[str, Field(pattern=r"^[a-z]{2,3}$")]] = ["en"]
    interpretation: bool = False
    contacts: list[Contact] = []
    capacity: int = Field(ge=0, le=10_000, description="open offers and active referrals at once")
    opening_hours: list[OpeningTimes] | None = Field(
        default=None,
        max_length=7,
        description="when the service works, one interval a day; offers to it are due in "
        "these hours (none: the deployment's working week)",
    )

    @field_validator("opening_hours")
    @classmethod
    def _one_interval_a_day(cls, hours: list[OpeningTimes] | None) -> list[OpeningTimes] | None:
        if hours and len({entry.day for entry in hours}) < len(hours):
            raise ValueError("one interval a day: a day is named twice")
        return hours


@dataclass(frozen=True)
class Editor:
    """Who edits the directory: the operator edits everything, a partner its own services."""

    organisation: str
    is_operator: bool

    def owns(self, organization_id: str) -> bool:
        return self.is_operator or self.organisation == organization_id


@dataclass(frozen=True)
class ServiceLoad:
    id: str
    name: str
    paused: bool
    capacity: int
    open_offers_and_referrals: int


@dataclass(frozen=True)
class ImportReport:
    organizations: int
    services: int
    skipped: list[str]
    ignored: list[str] = field(default_factory=list)  # parts of imported services not read


@dataclass(frozen=True)
class Gap:
    council: str
    need: str
    reason: str
    cases: int
    status: str = "unroutable"  # or "waiting": every service that could take it is full
    since: datetime | None = None  # the oldest of these cases has been here since


# -- organisations and agreements ------------------------------------------------------------


async def add_organization(
    uow: PartnersUnitOfWork, command: NewOrganization, *, by: Manager
) -> str:
    """A partner organisation with its agreements (recorded as ``by``'s); its id."""
    organization_id = uow.new_id()
    async with uow.transaction():
        values = command.model_dump(mode="json", exclude={"agreements"})
        await store.add_organization(uow.session, organization_id, values)
        for terms in command.agreements:
            await record_agreement(uow, by, organization_id, terms)
    return organization_id


# -- services --------------------------------------------------------------------------------


async def _save_service(uow: PartnersUnitOfWork, service_id: str, details: ServiceDetails) -> None:
    if not details.councils and not details.postcode_districts:
        raise Invalid("councils", "a service covers at least one council or postcode district")
    if (
        details.minimum_age is not None
        and details.maximum_age is not None
        and (details.minimum_age > details.maximum_age)
    ):
        raise Invalid("maximum_age", "must not be below minimum_age")
    values = details.model_dump(mode="json")
    values["organization_id"] = str(details.organization_id)
    await store.save_service(uow.session, service_id, values, uow.now())


def _capacity_of(row: dict[str, Any]) -> tuple[int, bool, list[str]]:
    return row["capacity"], bool(row["paused"]), sorted(row["needs"])


async def _say_capacity(
    uow: PartnersUnitOfWork, service_id: str, before: dict[str, Any] | None
) -> None:
    """Inside the caller's transaction, after a write: ``partners.service.capacity_changed``
    if the service's capacity, pause or needs differ from ``before`` (None: the service is
    new), so the reports' capacity history (docs/partners.md) changes only when it does."""
    row = await store.service(uow.session, service_id, lock=True)
    if row is None or (before is not None and _capacity_of(before) == _capacity_of(row)):
        return
    await uow.outbox.add(
        uow.session,
        ServiceCapacityChanged(
            service_id=service_id,
            partner_id=row["organization_id"],
            partner_name=await store.organization_name(uow.session, row["organization_id"]),
            needs=row["needs"],
            capacity=row["capacity"],
            paused=row["paused"],
            at=uow.now(),
        ),
        subject=service_id,
    )


async def add_service(uow: PartnersUnitOfWork, editor: Editor, details: ServiceDetails) -> str:
    """A new service of an organisation; its id."""
    if not editor.owns(str(details.organization_id)):
        raise Forbidden("a partner edits only its own services")
    service_id = uow.new_id()
    async with uow.transaction():
        if not await store.organization_exists(uow.session, str(details.organization_id)):
            raise Invalid("organization_id", "no such organization")
        await _save_service(uow, service_id, details)
        await _say_capacity(uow, service_id, None)
        await offer_waiting(uow, [need.value for need in details.needs], now=uow.now())
    return service_id


async def _own_service(
    uow: PartnersUnitOfWork, editor: Editor, service_id: str, *, lock: bool = True
) -> dict[str, Any]:
    """The service, locked unless only read, if the editor may edit it; otherwise as if it
    did not exist."""
    row = await store.service(uow.session, service_id, lock=lock)
    if row is None or not editor.owns(row["organization_id"]):
        raise NotFound("service not found")
    return row


async def edit_service(
    uow: PartnersUnitOfWork, editor: Editor, service_id: str, details: ServiceDetails
) -> None:
    async with uow.transaction():
        current = await _own_service(uow, editor, service_id)
        if str(details.organization_id) != current["organization_id"]:
            raise Invalid("organization_id", "a service cannot move to another organisation")
        await _save_service(uow, service_id, details)
        await _say_capacity(uow, service_id, current)
        # a capacity raise, a wider area or a new need may let a waiting need in
        await offer_waiting(uow, [need.value for need in details.needs], now=uow.now())


MAX_PAUSE_REASON = 500


async def pause_service(
    uow: PartnersUnitOfWork, editor: Editor, service_id: str, reason: str
) -> None:
    """Intake paused: offers not yet answered are withdrawn and handed on."""
    if len(reason) > MAX_PAUSE_REASON:  # (the web inbox's form as the API's body)
        raise Invalid("reason", f"is longer than {MAX_PAUSE_REASON:,} characters")
    async with uow.transaction():
        now = uow.now()
        before = await _own_service(uow, editor, service_id)
        await store.set_paused(uow.session, service_id, True, reason)
        await _say_capacity(uow, service_id, before)
        waiting = await offer_store.of_service(uow.session, service_id, lifecycle.PENDING_STATUSES)
        await withdraw_offers(uow, waiting, f"the service paused intake: {reason}", now=now)
        for offer in waiting:
            await place(uow, offer.request_id, now=now)


MAX_CAPACITY = 10_000


async def set_capacity(
    uow: PartnersUnitOfWork, editor: Editor, service_id: str, capacity: int
) -> None:
    """How many open offers and referrals the service takes at once; a raise lets waiting
    needs in straight away. A lower figure withdraws nothing: it only stops new offers."""
    if not 0 <= capacity <= MAX_CAPACITY:
        raise Invalid("capacity", f"must be a whole number from 0 to {MAX_CAPACITY:,}")
    async with uow.transaction():
        before = await _own_service(uow, editor, service_id)
        await store.set_capacity(uow.session, service_id, capacity)
        await _say_capacity(uow, service_id, before)
        await offer_freed_place(uow, service_id, now=uow.now())


async def resume_service(uow: PartnersUnitOfWork, editor: Editor, service_id: str) -> None:
    async with uow.transaction():
        before = await _own_service(uow, editor, service_id)
        await store.set_paused(uow.session, service_id, False, None)
        await _say_capacity(uow, service_id, before)
        await offer_freed_place(uow, service_id, now=uow.now())


async def service_load(uow: PartnersUnitOfWork, editor: Editor, service_id: str) -> ServiceLoad:
    """Capacity and current load, derived from offers."""
    async with uow.snapshot():
        return await _load(uow, editor, service_id)


async def _load(uow: PartnersUnitOfWork, editor: Editor, service_id: str) -> ServiceLoad:
    row = await _own_service(uow, editor, service_id, lock=False)  # a snapshot's read
    active = await offer_store.active_count(uow.session, service_id)
    return ServiceLoad(
        id=row["id"],
        name=row["name"],
        paused=row["paused"],
        capacity=row["capacity"],
        open_offers_and_referrals=active,
    )


# -- Open Referral UK: import, export, public reads --------------------------------------------


async def export_directory(uow: PartnersUnitOfWork) -> list[dict[str, Any]]:
    """The whole directory as Open Referral UK services."""
    rows = await store.all_services(uow.session)
    return [oruk.service_full(row, store.organization_of(row)) for row in rows]


async def import_directory(
    uow: PartnersUnitOfWork,
    documents: Sequence[Any],
    *,
    kind: PartnerKind = PartnerKind.COMMUNITY,
    capacity: int = 10,
) -> ImportReport:
    """ORUK services (with their organisations) added or updated; what could not be taken,
    and why. Organisations new to us get no data-sharing agreement: nothing is offered to
    them until one is recorded with a council (``service_layer/agreements.py``). Each
    document is read and checked before anything is written: one not taken is skipped,
    saying why, and the others go in."""
    seen_orgs: set[str] = set()
    imported, skipped, ignored = 0, [], []
    async with uow.transaction():
        for position, document in enumerate(documents, 1):
            taken = _taken(document, kind=kind, capacity=capacity)
            if isinstance(taken, str):
                skipped.append(f"{_label(document, position)}: {taken}")
                continue
            if taken.organization is not None:
                await store.add_organization_if_new(uow.session, taken.organization)
            elif not await store.organization_exists(uow.session, taken.organization_id):
                skipped.append(
                    f"{taken.service_id}: its organization_id names no organization here "
                    "(describe it under organization)"
                )
                continue
            ignored += [f"{taken.service_id}: {note}" for note in taken.unread]
            seen_orgs.add(taken.organization_id)
            before = await store.service(uow.session, taken.service_id, lock=True)
            await _save_service(uow, taken.service_id, taken.details)
            await _say_capacity(uow, taken.service_id, before)
            imported += 1
        if imported:
            await offer_waiting(uow, None, now=uow.now())
    return ImportReport(
        organizations=len(seen_orgs), services=imported, skipped=skipped, ignored=ignored
    )


class _Taken(NamedTuple):
    organization: dict[str, Any] | None  # described in the document: added if new
    organization_id: str
    service_id: str
    details: ServiceDetails
    unread: list[str]  # what of it was not read (opening hours), in words


def _taken(document: Any, *, kind: PartnerKind, capacity: int) -> _Taken | str:
    """An ORUK service document as what to store, or why it cannot be taken. Anything may
    come in a document: the organisation it describes is checked as a new one is
    (``NewOrganization``), its service as an edit is (``ServiceDetails``), and the values
    checked are the ones stored."""
    if not isinstance(document, dict):
        return "not an ORUK service (not an object)"
    try:
        org, service = oruk.from_service(document)
        service_id = str(uuid.UUID(str(service["id"])))
        organization_id = str(uuid.UUID(str(org["id"] or "")))
        hours, unread = oruk.opening_hours(document)
    except (KeyError, TypeError, ValueError, AttributeError):
        return "not an ORUK service with an organization"
    if not service["needs"] or not (service["councils"] or service["postcode_districts"]):
        return "no Upstream need or no service area"
    organization = None
    if document.get("organization"):
        described = {k: v for k, v in org.items() if k != "id" and v is not None}
        checked_org = _checked(
            NewOrganization, {**described, "kind": kind.value}, "organization.", unread
        )
        if isinstance(checked_org, str):
            return checked_org
        organization = {
            "id": organization_id,
            "kind": kind.value,
            "name": checked_org.name,
            "description": checked_org.description,
            "email": checked_org.email,
            "website": str(org["website"]).strip() if checked_org.website else None,
        }
    details = _checked(
        ServiceDetails,
        {
            **{k: v for k, v in service.items() if k != "id" and v is not None},
            "opening_hours": hours,
            "capacity": capacity,
        },
        "",
        unread,
    )
    if isinstance(details, str):
        return details
    return _Taken(organization, organization_id, service_id, details, unread)


# A way to reach them, not what they are: one not written as it should be is left out (and
# said so), not a reason to leave the service out of the directory.
_LEFT_OUT_IF_UNREADABLE = frozenset({"url", "email", "website"})


_Model = TypeVar("_Model", bound=BaseModel)


def _checked(
    model: type[_Model], values: dict[str, Any], within: str, unread: list[str]
) -> _Model | str:
    """``values`` as ``model`` takes them, or why not (each field and reason, ``within`` its
    part of the document); a contact field it cannot take is left out, noted in ``unread``."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        errors = exc.errors()
    fields = {e["loc"][0] if e["loc"] else "" for e in errors}
    if not fields <= _LEFT_OUT_IF_UNREADABLE:
        return _reasons(errors, within)
    for name in sorted(fields):
        why = _reasons([e for e in errors if e["loc"][0] == name], within)
        unread.append(f"left out {why}")
    return _checked(model, {k: v for k, v in values.items() if k not in fields}, within, unread)


def _reasons(errors: list[Any], within: str) -> str:
    return "; ".join(
        f"{within}{'.'.join(map(str, e['loc'])) or 'service'}: {validation_reason(e)}"
        for e in errors
    )


def _label(document: Any, position: int) -> str:
    """How a skipped document is named: its id if it is one, else its place in the list (an
    id may hold anything)."""
    given = document.get("id") if isinstance(document, dict) else None
    try:
        return str(uuid.UUID(given)) if isinstance(given, str) else f"#{position}"
    except ValueError:
        return f"#{position}"


def page(items: list[dict[str, Any]], total: int, number: int, per_page: int) -> dict[str, Any]:
    """An ORUK page of ``items``."""
    pages = max(1, math.ceil(total / per_page))
    return {
        "total_items": total,
        "total_pages": pages,
        "page_number": number,
        "size": len(items),
        "first_page": number == 1,
        "last_page": number >= pages,
        "empty": not items,
        "contents": items,
    }


async def public_services(
    uow: PartnersUnitOfWork,
    *,
    number: int,
    per_page: int,
    text: str | None = None,
    taxonomy_term_id: str | None = None,
) -> dict[str, Any]:
    """A page of services in ORUK list shape, by name, matching the search text and the
    taxonomy term (an unknown term matches nothing)."""
    async with uow.snapshot():  # the page and the count of one moment
        rows, total = await store.services_page(
            uow.session,
            text=text,
            need=oruk.NEED_BY_TERM.get(taxonomy_term_id) if taxonomy_term_id else None,
            by_need=bool(taxonomy_term_id),
            limit=per_page,
            offset=(number - 1) * per_page,
        )
    items = [oruk.service_summary(row, store.organization_of(row)) for row in rows]
    return page(items, total, number, per_page)


async def public_service(uow: PartnersUnitOfWork, service_id: str) -> dict[str, Any]:
    """One service in full ORUK shape."""
    try:
        uuid.UUID(service_id)
    except ValueError:
        raise NotFound("service not found") from None
    row = await store.service_with_organization(uow.session, service_id)
    if row is None:
        raise NotFound("service not found")
    return oruk.service_full(row, store.organization_of(row))


def taxonomies() -> dict[str, Any]:
    return page([oruk.TAXONOMY], 1, 1, 50)


def taxonomy_terms(number: int, per_page: int) -> dict[str, Any]:
    terms = [oruk.taxonomy_term(n.value) for n in Need]
    return page(terms[(number - 1) * per_page : number * per_page], len(terms), number, per_page)


# -- gaps ------------------------------------------------------------------------------------


async def gaps(uow: PartnersUnitOfWork, council: str | None = None) -> list[Gap]:
    """Needs currently unroutable or waiting for a place, by council, need and reason, most
    cases first: one council's (``council``), or every council's (None, for operators)."""
    return [
        Gap(
            council=row["council"],
            need=row["need"],
            reason=row["reason"] or "",
            cases=row["cases"],
            status=row["status"],
            since=row["since"],
        )
        for row in await placement_store.gaps(uow.session, council)
    ]


async def organization_services(uow: PartnersUnitOfWork, organization_id: str) -> list[ServiceLoad]:
    """The organisation's services with their capacity, load and whether they are paused
    (the web inbox's services page)."""
    editor = Editor(organization_id, is_operator=False)
    async with uow.snapshot():
        ids = await store.service_ids_of(uow.session, organization_id)
        return [await _load(uow, editor, service_id) for service_id in ids]


async def organization_name(uow: PartnersUnitOfWork, organization_id: str) -> str:
    return await store.organization_name(uow.session, organization_id) or "your organisation"
