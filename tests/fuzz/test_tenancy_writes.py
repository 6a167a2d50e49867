"""Cross-tenant write probes: every write on an object (a POST, PUT, PATCH or DELETE on a
path with an id) tried by another tenant's principal on a real object, over HTTP on a real
database. The answer is 404 (the object is not theirs to know of), or 403 where the route is
for another kind of caller by design; and nothing changed: every table, outbox included,
is the same afterwards.

The routes come from each app's router, so a new write endpoint without a probe here fails
``test_every_write_on_an_object_has_a_probe``."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from devtools.demo_councils import DEMO_COUNCILS
from services.partners.bootstrap import SERVICE as PARTNERS
from services.partners.service_layer import placement
from services.partners.service_layer.placement import CaseToRoute
from services.partners.settings import PartnersSettings
from services.referrals.bootstrap import SERVICE as REFERRALS
from services.referrals.settings import ReferralsSettings
from services.risk.bootstrap import SERVICE as RISK
from services.risk.settings import RiskSettings
from shared.auth import OrganisationKind, Role, mint_token
from shared.events.envelope import utc_now
from shared.http import create_app
from shared.service import ServiceDefinition
from shared.settings import ServiceSettings
from shared.vocabulary import LawfulBasis, PartnerKind
from tests.conftest import MakeDatabase
from tests.integration.partners.conftest import work_on
from tests.integration.referrals.conftest import referral
from tests.support.services import serve

pytestmark = pytest.mark.integration

WRITES = {"POST", "PUT", "PATCH", "DELETE"}
NEWHAM, HACKNEY = "E09000025", "E09000012"


def _routes(routes: list[Any]) -> Iterator[Any]:
    """Every route the app serves, into included routers (FastAPI 0.165 keeps those as
    ``_IncludedRouter``, each listing its effective routes)."""
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is not None:
            yield from contexts()
        else:
            yield route


def writes_on_objects(definition: ServiceDefinition, settings: ServiceSettings) -> set[str]:
    """``METHOD /path`` of every route that writes to an object named in its path."""
    app = create_app(definition, settings)
    found = {
        f"{method} {route.path}"
        for route in _routes(app.routes)
        if "{" in getattr(route, "path", "")
        for method in set(getattr(route, "methods", None) or ()) & WRITES
    }
    assert found, "no write routes found: has FastAPI changed how it keeps routes?"
    return found


@dataclass(frozen=True)
class Probe:
    """One write as another tenant: the path (with the real object's id), a body valid for
    the route, and, where the route is not for the caller's kind at all, the 403 it gives by
    design instead of the caller's usual answer."""

    path: str
    body: Any = None
    allowed: tuple[int, ...] | None = None


def bearer(
    settings: ServiceSettings, org: str, kind: OrganisationKind, *roles: Role
) -> dict[str, str]:
    token = mint_token(settings, subject=f"probe-{org}", organisation=org, kind=kind, roles=roles)
    return {"Authorization": f"Bearer {token}"}


async def snapshot(engine: AsyncEngine) -> dict[str, str]:
    """A digest of every row of every table: equal before and after means nothing changed."""
    async with engine.connect() as connection:
        tables = (
            await connection.execute(
                text(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                    "AND tablename <> 'alembic_version' ORDER BY tablename"
                )
            )
        ).scalars()
        digests = {}
        for table in list(tables):
            digests[table] = str(
                await connection.scalar(
                    text(
                        f"SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|' "
                        f"ORDER BY t::text)), '') FROM \"{table}\" t"
                    )
                )
            )
        return digests


async def probe_all(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    probes: dict[str, Probe],
    callers: dict[str, tuple[dict[str, str], tuple[int, ...]]],
    owner: tuple[str, dict[str, str]],
) -> None:
    """Each probe as each caller (headers, the answers allowed it): the answer allowed and
    every table unchanged. Then one probe as the object's owner: it succeeds and the
    snapshot sees the change (the ids are real, the bodies valid, the digest awake)."""
    failures = []
    for label, probe in probes.items():
        method = label.split(" ", 1)[0]
        for caller, (headers, usual) in callers.items():
            before = await snapshot(engine)
            response = await client.request(method, probe.path, json=probe.body, headers=headers)
            after = await snapshot(engine)
            changed = sorted(table for table in before if before[table] != after.get(table))
            if response.status_code not in (probe.allowed or usual) or changed:
                failures.append(
                    f"{label} as {caller}: {response.status_code} {response.text[:200]}"
                    + (f"; changed {changed}" if changed else "")
                )
    assert not failures, "\n".join(failures)
    label, headers = owner
    before = await snapshot(engine)
    response = await client.request(
        label.split(" ", 1)[0], probes[label].path, json=probes[label].body, headers=headers
    )
    assert response.is_success, response.text
    assert await snapshot(engine) != before


# -- referrals ---------------------------------------------------------------------------------


def referrals_probes(
    case_id: str,
    duplicate_id: str,
    resident_id: str,
    into: str,
    merge_id: str,
    subject_access_id: str,
) -> dict[str, Probe]:
    case = f"/v1/cases/{case_id}"
    consent = referral()["sharing"]["consent"]
    return {
        "POST /v1/cases/{case_id}/assign": Probe(f"{case}/assign", {"caseworker": "mallory"}),
        "POST /v1/cases/{case_id}/notes": Probe(f"{case}/notes", {"text": "not yours"}),
        "POST /v1/cases/{case_id}/consent": Probe(f"{case}/consent", consent),
        "POST /v1/cases/{case_id}/consent/withdraw": Probe(
            f"{case}/consent/withdraw", {"reason": "not yours"}
        ),
        "POST /v1/cases/{case_id}/basis": Probe(
            f"{case}/basis",
            {
                "lawful_basis": "vital_interests",
                "justification": "not yours",
                "decided_by": "mallory",
                "reason": "not yours",
            },
        ),
        "POST /v1/cases/{case_id}/withdraw": Probe(f"{case}/withdraw", {"reason": "not yours"}),
        "POST /v1/cases/{case_id}/close": Probe(
            f"{case}/close", {"outcome": "support_provided", "note": "not yours"}
        ),
        "POST /v1/cases/{case_id}/route": Probe(f"{case}/route"),
        "POST /v1/duplicates/{duplicate_id}/confirm": Probe(
            f"/v1/duplicates/{duplicate_id}/confirm"
        ),
        "POST /v1/duplicates/{duplicate_id}/reject": Probe(f"/v1/duplicates/{duplicate_id}/reject"),
        "POST /v1/residents/{resident_id}/merge": Probe(
            f"/v1/residents/{resident_id}/merge", {"into": into}
        ),
        "POST /v1/merges/{merge_id}/undo": Probe(
            f"/v1/merges/{merge_id}/undo", {"reason": "not yours"}
        ),
        # For a council's IG team only: a caseworker is refused by role, another's IG by 404.
        "POST /v1/subject-access-requests/{request_id}/extension": Probe(
            f"/v1/subject-access-requests/{subject_access_id}/extension",
            {"reason": "not yours", "resident_told_on": date.today().isoformat()},
            allowed=(403, 404),
        ),
    }


@pytest.fixture
async def referrals(
    service_database: MakeDatabase,
) -> AsyncIterator[tuple[httpx.AsyncClient, AsyncEngine, ReferralsSettings]]:
    settings = ReferralsSettings(
        database_url=await service_database("referrals"), councils=[NEWHAM, HACKNEY]
    )
    async with serve(REFERRALS, settings) as (client, engine):
        yield client, engine, settings


async def _a_subject_access_request(
    client: httpx.AsyncClient, settings: ReferralsSettings, resident_id: str
) -> str:
    ig = bearer(settings, NEWHAM, OrganisationKind.COUNCIL, Role.INFORMATION_GOVERNANCE)
    opened = await client.post(
        "/v1/subject-access-requests", json={"resident_id": resident_id}, headers=ig
    )
    assert opened.status_code == 202, opened.text
    return str(opened.json()["id"])


async def _a_merge(client: httpx.AsyncClient, newham: dict[str, str]) -> str:
    """Two other Newham residents merged by a caseworker: a merge to try to undo."""
    ids = []
    for given, family, born in (("Chidi", "Eze", "1990-05-06"), ("Dana", "Smith", "1971-11-12")):
        body = referral(
            council=NEWHAM,
            resident={"given_name": given, "family_name": family, "date_of_birth": born},
        )
        made = await client.post("/v1/referrals", json=body, headers=newham)
        assert made.status_code == 201, made.text
        case = await client.get(f"/v1/cases/{made.json()['case_id']}", headers=newham)
        ids.append(case.json()["resident"]["id"])
    merged = await client.post(
        f"/v1/residents/{ids[0]}/merge", json={"into": ids[1]}, headers=newham
    )
    assert merged.status_code == 204, merged.text
    (merge,) = (await client.get("/v1/merges", params={"resident": ids[0]}, headers=newham)).json()
    return str(merge["id"])


async def test_no_write_reaches_another_councils_case_or_resident(
    referrals: tuple[httpx.AsyncClient, AsyncEngine, ReferralsSettings],
) -> None:
    client, engine, settings = referrals
    newham = bearer(settings, NEWHAM, OrganisationKind.COUNCIL, Role.CASEWORKER, Role.REFERRER)
    first = await client.post("/v1/referrals", json=referral(council=NEWHAM), headers=newham)
    assert first.status_code == 201, first.text
    # Same name and date of birth, another postcode: a possible duplicate for Newham to review.
    moved = referral(council=NEWHAM, resident={"address": {"postcode": "E8 1DY"}})
    second = await client.post("/v1/referrals", json=moved, headers=newham)
    assert second.status_code == 201, second.text
    duplicates = (await client.get("/v1/duplicates", headers=newham)).json()
    assert len(duplicates) == 1, duplicates
    async with engine.connect() as connection:
        residents = (
            (
                await connection.execute(
                    text("SELECT resident_id FROM cases WHERE id IN (:a, :b) ORDER BY created_at"),
                    {"a": first.json()["case_id"], "b": second.json()["case_id"]},
                )
            )
            .scalars()
            .all()
        )
    probes = referrals_probes(
        first.json()["case_id"],
        duplicates[0]["id"],
        str(residents[1]),
        str(residents[0]),
        await _a_merge(client, newham),
        await _a_subject_access_request(client, settings, str(residents[0])),
    )
    assert set(probes) == writes_on_objects(REFERRALS, settings)
    await probe_all(
        client,
        engine,
        probes,
        {
            "a Hackney caseworker": (
                bearer(settings, HACKNEY, OrganisationKind.COUNCIL, Role.CASEWORKER, Role.REFERRER),
                (404,),
            ),
            "a Hackney IG officer": (
                bearer(settings, HACKNEY, OrganisationKind.COUNCIL, Role.INFORMATION_GOVERNANCE),
                (403, 404),
            ),
            # Cases are for councils' caseworkers: a referrer from a charity is refused outright.
            "a VCS referrer": (
                bearer(settings, str(uuid.uuid4()), OrganisationKind.VCS, Role.REFERRER),
                (403,),
            ),
        },
        owner=("POST /v1/cases/{case_id}/notes", newham),
    )


# -- partners ----------------------------------------------------------------------------------


async def _add_partner(
    client: httpx.AsyncClient, operator: dict[str, str], name: str, need: str
) -> tuple[str, str]:
    organization = await client.post(
        "/v1/organizations",
        headers=operator,
        json={
            "name": name,
            "description": f"{name}, a local charity",
            "kind": "food",
            "agreements": [
                {
                    "council": NEWHAM,
                    "reference": f"DSA {name}",
                    "needs": [need],
                    "lawful_bases": ["consent"],
                    "starts_on": "2020-01-01",
                }
            ],
        },
    )
    assert organization.status_code == 201, organization.text
    service = await client.post(
        "/v1/services",
        headers=operator,
        json={
            "organization_id": organization.json()["id"],
            "name": f"{name} service",
            "description": f"what {name} offers",
            "needs": [need],
            "councils": [NEWHAM],
            "languages": ["en"],
            "capacity": 5,
        },
    )
    assert service.status_code == 201, service.text
    return organization.json()["id"], service.json()["id"]


@pytest.fixture
async def partners(
    service_database: MakeDatabase,
) -> AsyncIterator[tuple[httpx.AsyncClient, AsyncEngine, PartnersSettings]]:
    settings = PartnersSettings(database_url=await service_database("partners"))
    async with serve(PARTNERS, settings) as (client, engine):
        yield client, engine, settings


async def test_no_write_reaches_another_partners_offer_or_service(
    partners: tuple[httpx.AsyncClient, AsyncEngine, PartnersSettings],
) -> None:
    client, engine, settings = partners
    operator = bearer(settings, "operator", OrganisationKind.OPERATOR, Role.OPERATOR)
    food_bank, food_service = await _add_partner(client, operator, "Food Bank", "food")
    advice, _ = await _add_partner(client, operator, "Advice Centre", "money_and_debt")
    case_id = str(uuid.uuid4())
    async with work_on(engine, settings) as uow:
        await placement.route_case(
            uow,
            CaseToRoute(
                case_id=case_id,
                council=NEWHAM,
                packet={
                    "first_name": "Amina",
                    "needs": ["food"],
                    "council": NEWHAM,
                    "urgency": "high",
                },
                lawful_basis=LawfulBasis.CONSENT,
                consent_kinds=[PartnerKind.ANY_VOLUNTARY],
                ready_at=utc_now(),
            ),
        )
    async with engine.connect() as connection:
        (offer_id,) = (
            (
                await connection.execute(
                    text("SELECT id FROM offers WHERE organization_id = :o"), {"o": food_bank}
                )
            )
            .scalars()
            .all()
        )
    offer = f"/v1/inbox/offers/{offer_id}"
    service = f"/v1/services/{food_service}"
    details = {
        "organization_id": food_bank,
        "name": "taken over",
        "description": "not yours",
        "needs": ["food"],
        "councils": [NEWHAM],
        "languages": ["en"],
        "capacity": 50,
    }
    probes = {
        "POST /v1/inbox/offers/{offer_id}/accept": Probe(f"{offer}/accept"),
        "POST /v1/inbox/offers/{offer_id}/decline": Probe(
            f"{offer}/decline", {"reason": "no_capacity"}
        ),
        "POST /v1/inbox/offers/{offer_id}/progress": Probe(f"{offer}/progress", {"note": "x"}),
        "POST /v1/inbox/offers/{offer_id}/outcome": Probe(
            f"{offer}/outcome", {"outcome": "support_provided"}
        ),
        "PUT /v1/services/{service_id}": Probe(service, details),
        "POST /v1/services/{service_id}/pause": Probe(f"{service}/pause", {"reason": "x"}),
        "POST /v1/services/{service_id}/resume": Probe(f"{service}/resume"),
        # Agreements are for operators and councils' information-governance teams: partners
        # and caseworkers are refused outright (another council's IG team: below).
        "POST /v1/agreements/{agreement_id}/end": Probe(
            f"/v1/agreements/{await _agreement_of(engine, food_bank)}/end",
            {"reason": "not yours"},
            allowed=(403,),
        ),
        "PUT /v1/organizations/{organization_id}/inbox-addresses": Probe(
            f"/v1/organizations/{food_bank}/inbox-addresses",
            {"addresses": ["mallory@example.org"]},
            allowed=(403,),
        ),
        # The web inbox's pages act for a browser session (a cookie), never for a bearer
        # token: without a session they send the caller to sign in and change nothing. The
        # cross-partner probes with real sessions are in
        # tests/integration/partners/test_web_inbox.py.
        **{
            f"POST /inbox/offers/{{offer_id}}/{action}": Probe(
                f"/inbox/offers/{offer_id}/{action}", allowed=(303,)
            )
            for action in ("accept", "decline", "progress", "outcome")
        },
        **{
            f"POST /inbox/services/{{service_id}}/{action}": Probe(
                f"/inbox/services/{food_service}/{action}", allowed=(303,)
            )
            for action in ("pause", "resume", "capacity")
        },
        # A sign-in link is a form's action: anything else is refused before any lookup.
        "POST /inbox/sign-in/{token}": Probe("/inbox/sign-in/not-a-token", allowed=(422,)),
    }
    assert set(probes) == writes_on_objects(PARTNERS, settings)
    await probe_all(
        client,
        engine,
        probes,
        {
            "another partner": (
                bearer(settings, advice, OrganisationKind.VCS, Role.PARTNER),
                (404,),
            ),
            "a partner outside the directory": (
                bearer(settings, str(uuid.uuid4()), OrganisationKind.VCS, Role.PARTNER),
                (404,),
            ),
            # Councils do not act on partners' inboxes or services.
            "a council caseworker": (
                bearer(settings, NEWHAM, OrganisationKind.COUNCIL, Role.CASEWORKER),
                (403,),
            ),
        },
        owner=(
            "POST /v1/inbox/offers/{offer_id}/accept",
            bearer(settings, food_bank, OrganisationKind.VCS, Role.PARTNER),
        ),
    )


async def _agreement_of(engine: AsyncEngine, organization_id: str) -> str:
    async with engine.connect() as connection:
        return str(
            (
                await connection.execute(
                    text("SELECT id FROM agreements WHERE organization_id = :o"),
                    {"o": organization_id},
                )
            ).scalar_one()
        )


async def test_no_council_ends_another_councils_agreement(
    partners: tuple[httpx.AsyncClient, AsyncEngine, PartnersSettings],
) -> None:
    """A council's information-governance team manages its own council's agreements only:
    another council's team gets a 404 and nothing changes; Newham's own team ends it."""
    client, engine, settings = partners
    operator = bearer(settings, "operator", OrganisationKind.OPERATOR, Role.OPERATOR)
    food_bank, _ = await _add_partner(client, operator, "Food Bank", "food")
    agreement_id = await _agreement_of(engine, food_bank)
    probes = {
        "POST /v1/agreements/{agreement_id}/end": Probe(
            f"/v1/agreements/{agreement_id}/end", {"reason": "not yours"}
        ),
    }
    await probe_all(
        client,
        engine,
        probes,
        {
            "another council's IG team": (
                bearer(settings, HACKNEY, OrganisationKind.COUNCIL, Role.INFORMATION_GOVERNANCE),
                (404,),
            ),
            "another council's IG team that also works cases": (
                bearer(
                    settings,
                    HACKNEY,
                    OrganisationKind.COUNCIL,
                    Role.INFORMATION_GOVERNANCE,
                    Role.CASEWORKER,
                ),
                (404,),
            ),
        },
        owner=(
            "POST /v1/agreements/{agreement_id}/end",
            bearer(settings, NEWHAM, OrganisationKind.COUNCIL, Role.INFORMATION_GOVERNANCE),
        ),
    )


# -- risk --------------------------------------------------------------------------------------


@pytest.fixture
async def risk(
    service_database: MakeDatabase,
) -> AsyncIterator[tuple[httpx.AsyncClient, AsyncEngine, RiskSettings]]:
    settings = RiskSettings(database_url=await service_database("risk"))
    async with serve(RISK, settings) as (client, engine):
        yield client, engine, settings


async def test_rulesets_are_the_operators_alone_to_change(
    risk: tuple[httpx.AsyncClient, AsyncEngine, RiskSettings],
) -> None:
    """Rulesets are not a tenant's to change: the default and each council's own are tried
    and activated by the operator only. A council's transparency details are set by an
    operator or that council's own information-governance team. Every other principal is
    refused (403), nothing moves."""
    client, engine, settings = risk
    operator = bearer(settings, "operator", OrganisationKind.OPERATOR, Role.OPERATOR)
    version = (await client.get("/v1/rulesets/current", headers=operator)).json()["version"]
    details = DEMO_COUNCILS[NEWHAM].model_dump(mode="json")
    probes = {
        "POST /v1/rulesets/{version}/dry-run": Probe(f"/v1/rulesets/{version}/dry-run"),
        "POST /v1/rulesets/{version}/activate": Probe(f"/v1/rulesets/{version}/activate"),
        "PUT /v1/councils/{council}/ruleset": Probe(
            f"/v1/councils/{NEWHAM}/ruleset", {"version": version}
        ),
        "DELETE /v1/councils/{council}/ruleset": Probe(f"/v1/councils/{NEWHAM}/ruleset"),
        "PUT /v1/councils/{council}/transparency": Probe(
            f"/v1/councils/{NEWHAM}/transparency", details
        ),
    }
    assert set(probes) == writes_on_objects(RISK, settings)
    await probe_all(
        client,
        engine,
        probes,
        {
            "a council data feed": (
                bearer(settings, NEWHAM, OrganisationKind.COUNCIL, Role.DATA_FEED),
                (403,),
            ),
            "a council caseworker": (
                bearer(settings, NEWHAM, OrganisationKind.COUNCIL, Role.CASEWORKER, Role.OPERATOR),
                (403,),
            ),
            "a partner": (
                bearer(settings, str(uuid.uuid4()), OrganisationKind.VCS, Role.PARTNER),
                (403,),
            ),
            "another council's IG team": (
                bearer(settings, HACKNEY, OrganisationKind.COUNCIL, Role.INFORMATION_GOVERNANCE),
                (403,),
            ),
        },
        owner=("POST /v1/rulesets/{version}/activate", operator),
    )
