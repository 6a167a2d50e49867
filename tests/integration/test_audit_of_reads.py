"""Every access to personal data, in every service, leaves an audit row (issue #14's first
"Must show"); the IG team reads its council's trail and exports it.

The first test walks every operation of the three services' OpenAPI documents. Each
operation declares the categories of personal data it answers with: the ``x-personal-data``
extension (``openapi_extra=shared.audit.personal_data(...)``; an empty list: none).

- An operation without the declaration fails the test.
- An operation declared personal is called for real, against its service on a real,
  migrated database. It must write audit rows that name the caller and stay within the
  declared categories. If the test has no call for it (``CALLS``), the test fails.
- An operation declared as answering none must have no response field that names a
  resident.

So a new operation cannot forget: without a declaration it fails, and a personal one that
writes no row fails."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from devtools.embedded import drop_database, ensure_database, with_database
from devtools.stack import load_service
from services.partners.bootstrap import SERVICE as PARTNERS
from services.partners.service_layer import offers, placement
from services.partners.service_layer.placement import CaseToRoute
from services.partners.service_layer.web_access import WebSession
from services.referrals.bootstrap import SERVICE as REFERRALS
from services.referrals.settings import ReferralsSettings
from services.risk.bootstrap import SERVICE as RISK
from services.risk.domain.rules import ReferralFacts
from services.risk.service_layer import assessments
from services.risk.service_layer.active_ruleset import ActiveRuleset
from services.risk.service_layer.unit_of_work import RiskUnitOfWork
from services.risk.settings import RiskSettings
from shared.audit import PERSONAL_DATA, Category
from shared.auth import OrganisationKind, Role, mint_token
from shared.db import session_factory
from shared.events.catalogue import CATALOGUE
from shared.events.envelope import utc_now
from shared.identity import resident_keys
from shared.messaging.outbox import Outbox
from shared.migrations import upgrade
from shared.settings import ServiceSettings
from shared.vocabulary import LawfulBasis, PartnerKind
from tests.integration.partners.conftest import PartnersApi, settings_for, work_on
from tests.integration.referrals.conftest import ReferralsApi, referral, unique_council
from tests.support.services import serve

pytestmark = pytest.mark.integration

SERVICES = ("referrals", "partners", "risk")
# Field names that mark a response schema as holding a resident's data.
PERSONAL_FIELDS = {
    "given_name",
    "family_name",
    "first_name",
    "resident_name",
    "candidate_name",
    "date_of_birth",
    "packet",
    "resident_ids",
    "addresses",
    "resident_id",
    "merged_resident_id",
    "into_resident_id",
}
DPO = "dpo-person"


@dataclass
class Stack:
    """The three services, each on a database of its own, with one resident's data seeded
    through each."""

    referrals: ReferralsApi
    partners: PartnersApi
    risk_client: httpx.AsyncClient
    risk_engine: AsyncEngine
    risk_settings: RiskSettings
    council: str
    ids: dict[str, str] = field(default_factory=dict)

    def client(self, service: str) -> httpx.AsyncClient:
        return {
            "referrals": self.referrals.client,
            "partners": self.partners.client,
            "risk": self.risk_client,
        }[service]

    def engine(self, service: str) -> AsyncEngine:
        return {
            "referrals": self.referrals.engine,
            "partners": self.partners.engine,
            "risk": self.risk_engine,
        }[service]

    def settings(self, service: str) -> ServiceSettings:
        return {
            "referrals": self.referrals.settings,
            "partners": self.partners.settings,
            "risk": self.risk_settings,
        }[service]

    def bearer(
        self,
        service: str,
        role: Role,
        *,
        subject: str,
        organisation: str | None = None,
        kind: OrganisationKind = OrganisationKind.COUNCIL,
    ) -> dict[str, str]:
        token = mint_token(
            self.settings(service),
            subject=subject,
            organisation=organisation or self.council,
            kind=kind,
            roles=[role],
        )
        return {"Authorization": f"Bearer {token}"}

    def ig(self, service: str, council: str | None = None) -> dict[str, str]:
        return self.bearer(service, Role.INFORMATION_GOVERNANCE, subject=DPO, organisation=council)

    def caseworker(self, service: str) -> dict[str, str]:
        return self.bearer(service, Role.CASEWORKER, subject="caseworker-person")

    def operator(self, service: str) -> dict[str, str]:
        return self.bearer(
            service,
            Role.OPERATOR,
            subject="operator-person",
            organisation="operator",
            kind=OrganisationKind.OPERATOR,
        )

    async def audit_rows(self, service: str, after: int = 0) -> list[dict[str, Any]]:
        async with self.engine(service).connect() as connection:
            rows = await connection.execute(
                text("SELECT * FROM audit_log WHERE id > :after ORDER BY id"), {"after": after}
            )
            return [dict(row) for row in rows.mappings()]

    async def last_audit_id(self, service: str) -> int:
        async with self.engine(service).connect() as connection:
            found = await connection.scalar(text("SELECT max(id) FROM audit_log"))
            return int(found or 0)


@asynccontextmanager
async def _database(admin_url: str, service: str) -> AsyncIterator[str]:
    name = f"test_{service}_{uuid.uuid4().hex[:10]}"
    await ensure_database(admin_url, name)
    url = with_database(admin_url, name)
    try:
        upgrade(load_service(service), url)
        yield url
    finally:
        await drop_database(admin_url, name)


@pytest.fixture(scope="module")
async def stack(postgres_admin_url: str) -> AsyncIterator[Stack]:
    council, other = unique_council(), unique_council()
    async with AsyncExitStack() as stack:
        urls = {
            s: await stack.enter_async_context(_database(postgres_admin_url, s)) for s in SERVICES
        }
        referrals_settings = ReferralsSettings(
            database_url=urls["referrals"], councils=[council, other]
        )
        partners_settings = settings_for(urls["partners"])
        risk_settings = RiskSettings(database_url=urls["risk"])
        r_client, r_engine = await stack.enter_async_context(serve(REFERRALS, referrals_settings))
        p_client, p_engine = await stack.enter_async_context(serve(PARTNERS, partners_settings))
        k_client, k_engine = await stack.enter_async_context(serve(RISK, risk_settings))
        seeded = Stack(
            referrals=ReferralsApi(r_client, r_engine, referrals_settings, council, other),
            partners=PartnersApi(p_client, p_engine, partners_settings, council),
            risk_client=k_client,
            risk_engine=k_engine,
            risk_settings=risk_settings,
            council=council,
        )
        await _seed_referrals(seeded)
        await _seed_partners(seeded)
        await _seed_risk(seeded)
        yield seeded


async def _seed_referrals(s: Stack) -> None:
    api = s.referrals
    first = (await api.refer(referral())).json()
    await api.refer(referral(resident={"address": {"postcode": "E8 1DY"}}))  # a duplicate
    charity = (await api.refer(referral(council=api.council), kind="food_bank")).json()
    async with api.engine.connect() as connection:
        resident = await connection.scalar(
            text("SELECT resident_id FROM cases WHERE id = :c"), {"c": first["case_id"]}
        )
    s.ids |= {
        "case": first["case_id"],
        "resident": str(resident),
        "charity_referral": charity["referral_id"],
    }


async def _seed_partners(s: Stack) -> None:
    api = s.partners
    await api.add_partner("pantry", capacity=5)
    addresses = await api.client.put(
        f"/v1/organizations/{api.organizations['pantry']}/inbox-addresses",
        headers=api.operator(),
        json={"addresses": ["inbox@pantry.example"]},
    )
    assert addresses.status_code == 200, addresses.text
    s.ids["offer"] = await _offered(s, s.ids["case"])


async def _offered(s: Stack, case_id: str) -> str:
    """The case routed to the pantry: its offer's id."""
    api = s.partners
    case = CaseToRoute(
        case_id=case_id,
        council=api.council,
        packet={
            "first_name": "Amina",
            "contact": {"method": "phone", "value": "07700 900123"},
            "needs": ["food"],
            "council": api.council,
            "urgency": "high",
            "summary": "Needs food.",
        },
        lawful_basis=LawfulBasis.CONSENT,
        consent_kinds=[PartnerKind.ANY_VOLUNTARY],
        ready_at=utc_now(),
    )
    async with work_on(api.engine, api.settings) as uow:
        await placement.route_case(uow, case)
    async with api.engine.connect() as connection:
        offer = await connection.scalar(
            text("SELECT id FROM offers WHERE case_id = :c"), {"c": case_id}
        )
    return str(offer)


async def _seed_risk(s: Stack) -> None:
    settings = s.risk_settings
    keys = resident_keys(
        settings.resident_key_secret.get_secret_value(),
        council=s.council,
        given_name="Amina",
        family_name="Okafor",
        date_of_birth=date(1984, 3, 2),
        postcode="E15 4HT",
    )
    async with session_factory(s.risk_engine)() as session:
        uow = RiskUnitOfWork(
            session=session,
            outbox=Outbox(CATALOGUE, source="test"),
            settings=settings,
            rulesets=ActiveRuleset(),
        )
        await assessments.assess_referral(
            uow,
            assessments.ReferralToAssess(
                case_id=s.ids["case"],
                council=s.council,
                resident_keys=keys,
                referral=ReferralFacts(
                    circumstances=("no_food_in_home",), needs=("food",), urgency="high", age=42
                ),
                received_at=utc_now(),
            ),
        )
    s.ids["resident_key"] = keys[0]


# -- how to call each personal operation ---------------------------------------------------

Call = Callable[[Stack], Awaitable[httpx.Response]]


def _get(service: str, url: str, who: Callable[[Stack], dict[str, str]]) -> Call:
    async def call(s: Stack) -> httpx.Response:
        return await s.client(service).get(url.format(**s.ids), headers=who(s))

    return call


def _post(service: str, url: str, who: Callable[[Stack], dict[str, str]], body: Any = None) -> Call:
    async def call(s: Stack) -> httpx.Response:
        return await s.client(service).post(url.format(**s.ids), headers=who(s), json=body)

    return call


async def _confirm_a_duplicate(s: Stack) -> httpx.Response:
    """Another possible duplicate of the seeded resident, confirmed."""
    api = s.referrals
    await api.refer(referral(resident={"address": {"postcode": "E7 9AB"}}))
    listed = (await api.client.get("/v1/duplicates", headers=api.token())).json()
    return await api.client.post(f"/v1/duplicates/{listed[0]['id']}/confirm", headers=api.token())


async def _reject_a_duplicate(s: Stack) -> httpx.Response:
    api = s.referrals
    listed = (await api.client.get("/v1/duplicates", headers=api.token())).json()
    return await api.client.post(f"/v1/duplicates/{listed[0]['id']}/reject", headers=api.token())


async def _undo_a_merge(s: Stack) -> httpx.Response:
    """The merge ``_confirm_a_duplicate`` made, undone."""
    api = s.referrals
    listed = (await api.client.get("/v1/merges", headers=api.token())).json()
    return await api.client.post(
        f"/v1/merges/{listed[0]['id']}/undo", headers=api.token(), json={"reason": "not her"}
    )


async def _request_subject_access(s: Stack) -> httpx.Response:
    response = await s.referrals.client.post(
        "/v1/subject-access-requests",
        headers=s.ig("referrals"),
        json={"resident_id": s.ids["resident"]},
    )
    if response.is_success:
        s.ids["subject_access"] = response.json()["id"]
    return response


async def _extend_subject_access(s: Stack) -> httpx.Response:
    """The request ``_request_subject_access`` opened, its deadline extended (Article 12(3))."""
    return await s.referrals.client.post(
        "/v1/subject-access-requests/{subject_access}/extension".format(**s.ids),
        headers=s.ig("referrals"),
        json={"reason": "complex: three services' records", "resident_told_on": str(date.today())},
    )


async def _request_erasure(s: Stack) -> httpx.Response:
    """A resident of her own, referred and withdrawn (an open case with a live offer is not
    erased), then erased."""
    api = s.referrals
    person = {"given_name": "Erin", "family_name": "Erased", "date_of_birth": "1970-01-01"}
    made = (await api.refer(referral(resident=person))).json()
    await api.client.post(
        f"/v1/cases/{made['case_id']}/withdraw", headers=api.token(), json={"reason": "asked"}
    )
    async with api.engine.connect() as connection:  # not a read through the API: unaudited
        resident = await connection.scalar(
            text("SELECT resident_id FROM cases WHERE id = :c"), {"c": made["case_id"]}
        )
    response = await api.client.post(
        "/v1/erasure-requests",
        headers=s.ig("referrals"),
        json={"resident_id": str(resident), "ground": "consent_withdrawn"},
    )
    if response.is_success:
        s.ids["erasure"] = response.json()["id"]
    return response


def _partner(s: Stack) -> dict[str, str]:
    return s.partners.partner("pantry")


# Keyed by service, then "METHOD path" as the OpenAPI document names it. In each service the
# calls run in this order (accept before progress before outcome).
CALLS: dict[str, dict[str, Call]] = {
    "referrals": {
        "GET /v1/cases": _get("referrals", "/v1/cases", lambda s: s.referrals.token()),
        "GET /v1/cases/{case_id}": _get(
            "referrals", "/v1/cases/{case}", lambda s: s.referrals.token()
        ),
        "GET /v1/referrals/{referral_id}": _get(
            "referrals",
            "/v1/referrals/{charity_referral}",
            lambda s: s.referrals.token("food_bank"),
        ),
        "GET /v1/duplicates": _get("referrals", "/v1/duplicates", lambda s: s.referrals.token()),
        "POST /v1/duplicates/{duplicate_id}/reject": _reject_a_duplicate,
        "POST /v1/duplicates/{duplicate_id}/confirm": _confirm_a_duplicate,
        "GET /v1/merges": _get("referrals", "/v1/merges", lambda s: s.referrals.token()),
        "POST /v1/merges/{merge_id}/undo": _undo_a_merge,
        "POST /v1/subject-access-requests": _request_subject_access,
        "POST /v1/subject-access-requests/{request_id}/extension": _extend_subject_access,
        "GET /v1/subject-access-requests/{request_id}": _get(
            "referrals", "/v1/subject-access-requests/{subject_access}", lambda s: s.ig("referrals")
        ),
        "GET /v1/subject-access-requests/{request_id}/export": _get(
            "referrals",
            "/v1/subject-access-requests/{subject_access}/export",
            lambda s: s.ig("referrals"),
        ),
        "POST /v1/erasure-requests": _request_erasure,
        "GET /v1/erasure-requests/{request_id}": _get(
            "referrals", "/v1/erasure-requests/{erasure}", lambda s: s.ig("referrals")
        ),
        "GET /v1/audit": _get(
            "referrals", "/v1/audit?resident={resident}", lambda s: s.ig("referrals")
        ),
        "GET /v1/audit/export": _get(
            "referrals", "/v1/audit/export?format=csv", lambda s: s.ig("referrals")
        ),
    },
    "partners": {
        "GET /v1/inbox/offers": _get("partners", "/v1/inbox/offers", _partner),
        "GET /v1/inbox/offers/{offer_id}": _get("partners", "/v1/inbox/offers/{offer}", _partner),
        "POST /v1/inbox/offers/{offer_id}/accept": _post(
            "partners", "/v1/inbox/offers/{offer}/accept", _partner
        ),
        "POST /v1/inbox/offers/{offer_id}/progress": _post(
            "partners", "/v1/inbox/offers/{offer}/progress", _partner, {"note": "called her"}
        ),
        "POST /v1/inbox/offers/{offer_id}/outcome": _post(
            "partners",
            "/v1/inbox/offers/{offer}/outcome",
            _partner,
            {"outcome": "support_provided"},
        ),
        "PUT /v1/organizations/{organization_id}/inbox-addresses": lambda s: s.partners.client.put(
            f"/v1/organizations/{s.partners.organizations['pantry']}/inbox-addresses",
            headers=s.partners.operator(),
            json={"addresses": ["inbox@pantry.example", "desk@pantry.example"]},
        ),
        "GET /v1/organizations/{organization_id}/inbox-addresses": lambda s: s.partners.client.get(
            f"/v1/organizations/{s.partners.organizations['pantry']}/inbox-addresses",
            headers=s.partners.operator(),
        ),
        "GET /v1/audit": _get("partners", "/v1/audit?case={case}", lambda s: s.ig("partners")),
        "GET /v1/audit/export": _get("partners", "/v1/audit/export", lambda s: s.ig("partners")),
    },
    "risk": {
        "GET /v1/cases/{case_id}/assessment": _get(
            "risk", "/v1/cases/{case}/assessment", lambda s: s.caseworker("risk")
        ),
        "GET /v1/residents/{resident_key}/assessment": _get(
            "risk", "/v1/residents/{resident_key}/assessment", lambda s: s.caseworker("risk")
        ),
        "GET /v1/audit": _get("risk", "/v1/audit?case={case}", lambda s: s.ig("risk")),
        "GET /v1/audit/export": _get("risk", "/v1/audit/export", lambda s: s.ig("risk")),
    },
}


def _schema_fields(schema: Any, components: dict[str, Any], seen: set[str]) -> set[str]:
    """Every property name reachable from a response schema."""
    if isinstance(schema, list):
        return set().union(*(_schema_fields(s, components, seen) for s in schema))
    if not isinstance(schema, dict):
        return set()
    found: set[str] = set(schema.get("properties", {}))
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref not in seen:
        seen.add(ref)
        found |= _schema_fields(components[ref.rsplit("/", 1)[-1]], components, seen)
    for value in schema.values():
        found |= _schema_fields(value, components, seen)
    return found


async def test_every_operation_declares_its_personal_data_and_each_personal_one_is_audited(
    stack: Stack,
) -> None:
    undeclared: list[str] = []
    uncalled: list[str] = []
    unaudited: list[str] = []
    leaky: list[str] = []
    called = 0
    for service in SERVICES:
        document = (await stack.client(service).get("/openapi.json")).json()
        components = document.get("components", {}).get("schemas", {})
        operations = {
            f"{method.upper()} {path}": spec
            for path, methods in document["paths"].items()
            for method, spec in methods.items()
        }
        declared: dict[str, list[str]] = {}
        for name, spec in operations.items():
            categories = spec.get(PERSONAL_DATA)
            if not isinstance(categories, list) or not set(categories) <= set(Category):
                undeclared.append(f"{service} {name}")
                continue
            declared[name] = categories
            if not categories:
                fields = _schema_fields(spec.get("responses", {}), components, set())
                if fields & PERSONAL_FIELDS:
                    leaky.append(f"{service} {name}: {sorted(fields & PERSONAL_FIELDS)}")
        personal = [name for name, categories in declared.items() if categories]
        uncalled += [f"{service} {n}" for n in personal if n not in CALLS[service]]
        # In CALLS order: some calls build on the ones before (accept, then progress).
        for name, call in CALLS[service].items():
            if name not in personal:
                unaudited.append(f"{service} {name}: called, but not declared personal")
                continue
            before = await stack.last_audit_id(service)
            response = await call(stack)
            assert response.is_success, (service, name, response.text)
            called += 1
            rows = await stack.audit_rows(service, after=before)
            if not rows:
                unaudited.append(f"{service} {name}: no audit row")
            for row in rows:
                assert row["subject"] and row["subject"] != "unnamed", (service, name, row)
                assert row["organisation"] and row["roles"] and row["purpose"], (service, name)
                assert row["data_categories"], (service, name, row)
                assert set(row["data_categories"]) <= set(declared[name]), (service, name, row)
    assert not undeclared, f"declare x-personal-data (shared.audit.personal_data): {undeclared}"
    assert not uncalled, f"declared personal: add a call to CALLS to prove it audits: {uncalled}"
    assert not unaudited, unaudited
    assert not leaky, f"declared as answering no personal data, but the schema has: {leaky}"
    assert called == sum(len(c) for c in CALLS.values())


async def test_each_service_records_who_read_whose_data(stack: Stack) -> None:
    s = stack
    fresh_case = str(uuid.uuid4())
    fresh = await _offered(s, fresh_case)  # an open offer: its packet is shown
    before = {service: await s.last_audit_id(service) for service in SERVICES}
    assert (
        await s.client("referrals").get(
            f"/v1/cases/{s.ids['case']}", headers=s.caseworker("referrals")
        )
    ).status_code == 200
    assert (
        await s.partners.client.get(f"/v1/inbox/offers/{fresh}", headers=_partner(s))
    ).status_code == 200
    assert (
        await s.risk_client.get(
            f"/v1/cases/{s.ids['case']}/assessment", headers=s.caseworker("risk")
        )
    ).status_code == 200

    (read,) = await s.audit_rows("referrals", before["referrals"])
    assert (read["subject"], read["council"], read["case_ids"]) == (
        "caseworker-person",
        s.council,
        [s.ids["case"]],
    )
    (packet,) = await s.audit_rows("partners", before["partners"])
    assert packet["operation"] == "get_offer" and packet["council"] == s.council
    assert packet["organisation"] == s.partners.organizations["pantry"]
    assert packet["organisation_kind"] == "vcs" and packet["case_ids"] == [fresh_case]
    assert {"identity", "contact"} <= set(packet["data_categories"])
    (why,) = await s.audit_rows("risk", before["risk"])
    assert (why["operation"], why["council"], why["case_ids"]) == (
        "explain_case",
        s.council,
        [s.ids["case"]],
    )
    assert len(why["resident_ids"]) == 1  # the pseudonymous profile, no direct identifier


async def test_the_ig_team_reads_and_exports_its_own_council_s_trail(stack: Stack) -> None:
    s = stack
    other = unique_council()
    for service in ("partners", "risk"):
        client = s.client(service)
        by_case = await client.get(f"/v1/audit?case={s.ids['case']}", headers=s.ig(service))
        assert by_case.status_code == 200, by_case.text
        assert by_case.json() and all(s.ids["case"] in e["case_ids"] for e in by_case.json())
        by_user = await client.get("/v1/audit?subject=caseworker-person", headers=s.ig(service))
        assert by_user.status_code == 200
        assert all(e["subject"] == "caseworker-person" for e in by_user.json())
        # Another council's IG team sees none of these rows; an operator sees them.
        elsewhere = await client.get(
            f"/v1/audit?case={s.ids['case']}", headers=s.ig(service, other)
        )
        assert elsewhere.status_code == 200 and elsewhere.json() == []
        operator = await client.get(f"/v1/audit?case={s.ids['case']}", headers=s.operator(service))
        assert operator.status_code == 200 and operator.json()
        # A caseworker does not read the trail; a search names whom or what it is about.
        refused = await client.get(f"/v1/audit?case={s.ids['case']}", headers=s.caseworker(service))
        assert refused.status_code == 403
        assert (await client.get("/v1/audit", headers=s.ig(service))).status_code == 422
        since_zero = await client.get(
            f"/v1/audit?case={s.ids['case']}&since=0", headers=s.ig(service)
        )
        assert since_zero.status_code == 422 and since_zero.json()["errors"][0]["field"] == (
            "query.since"
        )
    pantry = s.partners.organizations["pantry"]
    by_partner = (
        await s.partners.client.get(f"/v1/audit?organisation={pantry}", headers=s.ig("partners"))
    ).json()
    assert by_partner and {e["organisation"] for e in by_partner} == {pantry}
    by_key = await s.risk_client.get(
        f"/v1/audit?resident={s.ids['resident_key']}", headers=s.ig("risk")
    )
    assert {"explain_resident", "explain_case"} <= {e["operation"] for e in by_key.json()}

    for service in SERVICES:
        client = s.client(service)
        as_json = await client.get("/v1/audit/export?format=json", headers=s.ig(service))
        assert as_json.status_code == 200, as_json.text
        assert "attachment" in as_json.headers["content-disposition"]
        as_csv = await client.get(
            "/v1/audit/export", headers={**s.ig(service), "Accept": "text/csv"}
        )
        assert as_csv.headers["content-type"].startswith("text/csv")
        table = list(csv.DictReader(io.StringIO(as_csv.text)))
        assert table and table[0].keys() >= {"at", "subject", "operation", "case_ids"}
        # The CSV holds what the JSON held (and the JSON export's own read, newest first).
        exported = {(e["at"], e["operation"]) for e in as_json.json()}
        assert exported <= {(_iso(r["at"]), r["operation"]) for r in table}
        assert all(e["council"] == s.council for e in as_json.json())


def _iso(at: str) -> str:
    """The CSV's ISO time as JSON writes it (``Z`` or ``+00:00``)."""
    return at.replace("+00:00", "Z") if at.endswith("+00:00") else at


async def test_the_web_inbox_s_reads_name_the_signed_in_address(stack: Stack) -> None:
    """The web inbox calls the API's use cases: given its session, the row names the
    address signed in; given only the partner's id, the organisation (the person unnamed)."""
    s = stack
    pantry = s.partners.organizations["pantry"]
    signed_in = WebSession(organization_id=pantry, email="inbox@pantry.example", csrf_token="x")
    before = await s.last_audit_id("partners")
    async with work_on(s.partners.engine, s.partners.settings) as uow:
        await offers.list_offers(uow, signed_in)
        await offers.get_offer(uow, signed_in, s.ids["offer"])
        await offers.get_offer(uow, pantry, s.ids["offer"])
    rows = await s.audit_rows("partners", before)
    assert [(r["operation"], r["subject"], r["organisation"]) for r in rows] == [
        ("list_offers", "inbox@pantry.example", pantry),
        ("get_offer", "inbox@pantry.example", pantry),
        ("get_offer", "unnamed", pantry),
    ]
    assert all(s.ids["case"] in r["case_ids"] and r["council"] == s.council for r in rows)
