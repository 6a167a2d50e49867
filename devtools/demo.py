"""``make demo``: a realistic day for Newham and Hackney, run through the live stack.

It starts its own stack (free ports, a throwaway state folder), loads a dozen partners of
different kinds, areas, languages and capacities, imports a signal file of households,
sends referrals, plays the partners (most accept, some decline, some let offers lapse), and
prints what happened as a few tables, per council, and the addresses a newcomer can open.
Every number it prints is read back from the services' APIs; ``--json`` also writes them as
JSON, and ``--keep`` leaves the stack running after the tables until Ctrl-C.
"""

from __future__ import annotations

import json
import os
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from devtools.embedded import free_port
from devtools.stack import SERVICE_NAMES, Stack, StackSettings
from shared.auth import OrganisationKind, Role, mint_token
from shared.settings import AuthSettings

NEWHAM, HACKNEY = "E09000025", "E09000012"
DISTRICTS = {
    NEWHAM: ["E6", "E7", "E12", "E13", "E15", "E16"],
    HACKNEY: ["E2", "E5", "E8", "E9", "N16"],
}
GIVEN = [
    "Amina",
    "Bola",
    "Chidi",
    "Dami",
    "Efe",
    "Femi",
    "Grace",
    "Hassan",
    "Ioana",
    "Jamal",
    "Kemi",
    "Liam",
    "Maryam",
    "Nadia",
    "Olu",
    "Priya",
    "Ravi",
    "Sade",
    "Tomasz",
    "Yusuf",
]
FAMILY = [
    "Adeyemi",
    "Begum",
    "Chowdhury",
    "Da Silva",
    "Evans",
    "Farah",
    "Green",
    "Hussain",
    "Ibrahim",
    "Jones",
    "Khan",
    "Lewis",
    "Mensah",
    "Nowak",
    "Okafor",
    "Patel",
    "Rahman",
    "Smith",
    "Taylor",
    "Uddin",
    "Wright",
    "Yilmaz",
]
PARTNERS = [  # name, kind, needs, councils, languages, interpretation, capacity, health data
    ("Newham Food Bank", "food", ["food"], [NEWHAM], ["en"], False, 40, False),
    ("Stratford Community Pantry", "food", ["food"], [NEWHAM], ["en", "bn"], False, 15, False),
    ("Hackney Food Network", "food", ["food"], [HACKNEY], ["en", "tr"], False, 30, False),
    (
        "East London Money Advice",
        "advice",
        ["money_and_debt", "benefits"],
        [NEWHAM, HACKNEY],
        ["en", "ur"],
        True,
        25,
        False,
    ),
    ("Hackney Benefits Clinic", "advice", ["benefits"], [HACKNEY], ["en"], True, 10, False),
    ("Newham Renters' Advice", "housing", ["housing"], [NEWHAM], ["en", "pl"], False, 20, False),
    ("Shelter Hackney Hub", "housing", ["housing"], [HACKNEY], ["en"], True, 15, False),
    (
        "Warm Homes East",
        "advice",
        ["fuel_and_utilities"],
        [NEWHAM, HACKNEY],
        ["en"],
        False,
        20,
        False,
    ),
    (
        "Mind in the East End",
        "health_and_wellbeing",
        ["mental_health"],
        [NEWHAM, HACKNEY],
        ["en"],
        True,
        12,
        True,
    ),
    (
        "Connect Befriending",
        "community",
        ["social_isolation", "digital_inclusion"],
        [NEWHAM],
        ["en", "bn", "ur"],
        False,
        10,
        False,
    ),
    (
        "Hackney Job Club",
        "community",
        ["employment_and_skills"],
        [HACKNEY],
        ["en", "tr"],
        False,
        10,
        False,
    ),
    (
        "Families First East",
        "community",
        ["children_and_families", "food"],
        [NEWHAM, HACKNEY],
        ["en"],
        True,
        15,
        False,
    ),
]
NEEDS = [
    "food",
    "food",
    "money_and_debt",
    "benefits",
    "housing",
    "fuel_and_utilities",
    "mental_health",
    "social_isolation",
    "employment_and_skills",
    "children_and_families",
    "digital_inclusion",
    "immigration_advice",
]


class Demo:
    def __init__(
        self,
        *,
        referrals: int,
        households: int,
        echo: Callable[[str], None] = print,
        seed: int = 2026,
    ) -> None:
        self.referral_count, self.household_count = referrals, households
        self.echo = echo
        self.rng = random.Random(seed)
        self.auth = AuthSettings()
        self.http = httpx.Client(timeout=120)

    def token(self, organisation: str, kind: OrganisationKind, *roles: Role) -> dict[str, str]:
        return {
            "Authorization": "Bearer "
            + mint_token(
                self.auth,
                subject=f"demo-{organisation}",
                organisation=organisation,
                kind=kind,
                roles=roles,
            )
        }

    def call(self, method: str, url: str, headers: dict[str, str], **kwargs: Any) -> Any:
        response = self.http.request(method, url, headers=headers, **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {url} answered {response.status_code}: {response.text}")
        return response.json() if response.content else None

    # -- the run ---------------------------------------------------------------------------
    def run(
        self,
        *,
        show: Callable[[dict[str, Any], DemoStack], None] | None = None,
        keep: bool = False,
    ) -> dict[str, Any]:
        """The day, and its summary. ``show`` is called with the summary while the stack is
        still up; with ``keep`` the stack then stays up until Ctrl-C (or SIGTERM)."""
        with tempfile.TemporaryDirectory(prefix="upstream-demo-") as state:
            settings = StackSettings(
                state_dir=Path(state),
                referrals_port=free_port(),
                risk_port=free_port(),
                partners_port=free_port(),
                broker_port=free_port(),
                worker_metrics_port_offset=1000,
            )
            stack = Stack(settings, echo=lambda _: None)
            self.urls = {
                n: f"http://127.0.0.1:{settings.api_port(n)}"
                for n in ("referrals", "risk", "partners")
            }
            # Partners get 30 seconds to answer here, so lapsed offers are seen handed on.
            os.environ["UPSTREAM_RESPONSE_HOURS"] = json.dumps(
                dict.fromkeys(("crisis", "high", "medium", "low", "none"), 30 / 3600)
            )
            try:
                self.echo("starting a stack of its own (PostgreSQL, broker, three services)…")
                stack.start()
                started = time.monotonic()
                self.seed_partners()
                imported = self.import_signals()
                sent = self.send_referrals()
                self.play_partners(deadline=time.monotonic() + 150)
                summary = self.summary(imported, sent)
                summary["seconds"] = round(time.monotonic() - started, 1)
                if show is not None:
                    show(summary, DemoStack(Path(state), self.urls, restart=stack.restart))
                if keep:
                    self.echo(
                        "the demo's stack keeps running (--keep): Ctrl-C stops it and "
                        "removes its state folder"
                    )
                    stack.wait()
                return summary
            finally:
                stack.stop()
                if keep:
                    self.echo("the demo's stack has stopped.")

    def seed_partners(self) -> None:
        operator = self.token("operator", OrganisationKind.OPERATOR, Role.OPERATOR)
        self.partners: dict[str, str] = {}
        self.partner_services: dict[str, str] = {}  # organisation id -> its service's id
        self.partner_councils: dict[str, list[str]] = {}
        for name, kind, needs, councils, languages, interprets, capacity, health in PARTNERS:
            org = self.call(
                "POST",
                f"{self.urls['partners']}/v1/organizations",
                operator,
                json={
                    "name": name,
                    "description": f"{name}: a local voluntary organisation",
                    "kind": kind,
                    # one data-sharing agreement with each council it serves
                    "agreements": [
                        {
                            "council": council,
                            "reference": f"{council} voluntary-sector DSA 2026",
                            "needs": needs,
                            "lawful_bases": ["consent", "vital_interests", "public_task"],
                            "special_category": health,
                            "starts_on": "2026-01-01",
                        }
                        for council in councils
                    ],
                },
            )["id"]
            service = self.call(
                "POST",
                f"{self.urls['partners']}/v1/services",
                operator,
                json={
                    "organization_id": org,
                    "name": name,
                    "description": f"Support from {name}",
                    "needs": needs,
                    "councils": councils,
                    "languages": languages,
                    "interpretation": interprets,
                    "capacity": capacity,
                },
            )
            self.partners[org] = name
            self.partner_services[org] = service["id"]
            self.partner_councils[org] = councils
        self.echo(f"directory: {len(self.partners)} partners in Newham and Hackney")

    def person(self, index: int) -> dict[str, Any]:
        rng = random.Random(index)
        council = NEWHAM if index % 3 else HACKNEY
        district = rng.choice(DISTRICTS[council])
        return {
            "given_name": rng.choice(GIVEN),
            "family_name": rng.choice(FAMILY),
            "date_of_birth": date(
                rng.randint(1940, 2004), rng.randint(1, 12), rng.randint(1, 28)
            ).isoformat(),
            "postcode": f"{district} {rng.randint(1, 9)}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}"
            f"{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}",
            "council": council,
        }

    def import_signals(self) -> dict[str, Any]:
        today = date.today()
        header = (
            "type,council,given_name,family_name,date_of_birth,postcode,source,"
            "observed_on,weeks,amount,stage,kind,notice_type,notice_date,utility\n"
        )

        def rows():
            yield header.encode()
            for index in range(self.household_count):
                who, rng = self.person(index), random.Random(f"signal-{index}")
                observed = (today - timedelta(days=rng.randint(1, 60))).isoformat()
                kind = rng.choices(
                    [
                        "rent_arrears",
                        "council_tax_arrears",
                        "benefit_sanction",
                        "disconnection_risk",
                        "eviction_notice",
                    ],
                    weights=[50, 25, 12, 10, 3],
                )[0]
                cells = {
                    # Most arrears are short: a few weeks, rarely eight or more.
                    "rent_arrears": f"{rng.choice([1, 1, 2, 2, 3, 3, 4, 5, 6, 8, 10, 12])},"
                    f"{rng.randint(100, 2500)},,,,,",
                    "council_tax_arrears": f",{rng.randint(100, 1500)},"
                    f"{rng.choice(['reminder', 'summons', 'enforcement'])},,,,",
                    "benefit_sanction": ",,,sanction,,,",
                    "disconnection_risk": ",,,,,,gas",
                    "eviction_notice": f",,,,section_21,{observed},",
                }[kind]
                yield (
                    f"{kind},{who['council']},{who['given_name']},{who['family_name']},"
                    f"{who['date_of_birth']},{who['postcode']},demo-feed,{observed},{cells}\n"
                ).encode()

        reports = []
        for council in (NEWHAM, HACKNEY):
            reports.append(
                self.call(
                    "POST",
                    f"{self.urls['risk']}/v1/signals/import",
                    {
                        **self.token(council, OrganisationKind.COUNCIL, Role.DATA_FEED),
                        "content-type": "text/csv",
                    },
                    content=(line for line in _only(council, rows())),
                )
            )
        keys = ("rows_read", "rows_stored", "rows_rejected", "flagged")
        self.imports = {
            council: {key: report[key] for key in keys}
            for council, report in zip((NEWHAM, HACKNEY), reports, strict=True)
        }
        total = {key: sum(r[key] for r in reports) for key in keys}
        self.echo(f"signals: {total['rows_read']} households read, {total['flagged']} flagged")
        return total

    def send_referrals(self) -> int:
        for index in range(self.referral_count):
            # One in five is about a household the signal feed already described.
            who = self.person(index if index % 5 == 0 else self.household_count + index)
            rng = random.Random(f"referral-{index}")
            council = who.pop("council")
            consent = rng.random() < 0.85
            referrer = self.token(council, OrganisationKind.COUNCIL, Role.CASEWORKER, Role.REFERRER)
            body = {
                "resident": {
                    "given_name": who["given_name"],
                    "family_name": who["family_name"],
                    "date_of_birth": who["date_of_birth"],
                    "contact": {"phone": f"07700 9{index:05d}", "preferred": "phone"},
                    "address": {"postcode": who["postcode"]},
                    "preferred_language": rng.choice(["en"] * 6 + ["bn", "pl", "tr", "ur"]),
                },
                "council": council,
                "needs": rng.sample(NEEDS, k=rng.choice([1, 1, 2])),
                "circumstances": rng.sample(
                    ["no_food_in_home", "children_in_household", "lives_alone", "recent_job_loss"],
                    k=rng.randint(0, 2),
                ),
                "urgency": rng.choice(["low", "medium", "medium", "high", "crisis"]),
                "sharing": {
                    "lawful_basis": "consent",
                    "consent": {
                        "given_by": "the resident",
                        "method": "verbal",
                        "given_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
                        "partner_kinds": ["any_voluntary"],
                    },
                }
                if consent
                else {
                    "lawful_basis": "public_task",
                    "justification": "the council's duty to prevent homelessness",
                    "decided_by": "Housing Needs team manager",
                    # For a health need (special category data, UK GDPR Article 9).
                    "article9_condition": "substantial_public_interest",
                },
            }
            self.call(
                "POST",
                f"{self.urls['referrals']}/v1/referrals",
                {**referrer, "Idempotency-Key": f"demo-{index}"},
                json=body,
            )
        self.echo(f"referrals: {self.referral_count} sent")
        return self.referral_count

    def play_partners(self, *, deadline: float) -> None:
        """Each partner answers what is in its inbox: most accept and help, some decline,
        some never answer (and the offer lapses and is handed on)."""
        answered: set[str] = set()
        settled = 0
        while time.monotonic() < deadline and settled < 3:
            waiting = False
            for org in self.partners:
                me = self.token(org, OrganisationKind.VCS, Role.PARTNER)
                for offer in self.call("GET", f"{self.urls['partners']}/v1/inbox/offers", me):
                    base = f"{self.urls['partners']}/v1/inbox/offers/{offer['id']}"
                    if offer["status"] in ("offered", "accepted", "in_progress"):
                        waiting = True
                    if offer["status"] == "accepted":
                        outcome = random.Random(offer["id"]).choice(
                            ["support_provided"] * 3 + ["partly_resolved", "resident_uncontactable"]
                        )
                        self.call("POST", f"{base}/outcome", me, json={"outcome": outcome})
                    elif offer["status"] == "offered" and offer["id"] not in answered:
                        answered.add(offer["id"])
                        choice = random.Random(offer["id"]).random()
                        if choice < 0.65:
                            self.call("POST", f"{base}/accept", me)
                        elif choice < 0.85:
                            self.call("POST", f"{base}/decline", me, json={"reason": "no_capacity"})
                        # else: never answered; it lapses and is handed on
            # Cases still on their way to a partner count as waiting too: under load, routing
            # can take longer than a few quiet rounds.
            waiting = waiting or self.cases_in_flight()
            settled = 0 if waiting else settled + 1
            time.sleep(2)

    def cases_in_flight(self) -> bool:
        """Any case not yet assessed or routed (received, assessed, ready for routing)."""
        operator = self.token("operator", OrganisationKind.OPERATOR, Role.OPERATOR)
        page = self.call(
            "GET",
            f"{self.urls['referrals']}/v1/cases",
            operator,
            params={"limit": 1, "status": ["received", "assessed", "ready_for_routing"]},
        )
        return bool(page["items"])

    # -- what happened, from the APIs ------------------------------------------------------
    def summary(self, imported: dict[str, Any], sent: int) -> dict[str, Any]:
        operator = self.token("operator", OrganisationKind.OPERATOR, Role.OPERATOR)
        cases, cursor = [], None
        while True:
            page = self.call(
                "GET",
                f"{self.urls['referrals']}/v1/cases",
                operator,
                params={"limit": 100, **({"cursor": cursor} if cursor else {})},
            )
            cases += page["items"]
            cursor = page["next_cursor"]
            if not cursor:
                break
        # Only a case that was routed can have offers: those are fetched in full.
        details = [
            self.call("GET", f"{self.urls['referrals']}/v1/cases/{c['id']}", operator)
            for c in cases
            if c["status"] not in ("received", "assessed", "awaiting_consent")
        ]
        offers = [o for d in details for o in d["offers"]]
        waits = []
        for d in details:
            times = d["status_times"]
            if "offered" in times:
                waits.append(
                    (
                        datetime.fromisoformat(times["offered"])
                        - datetime.fromisoformat(d["created_at"])
                    ).total_seconds()
                )
        gaps = self.call("GET", f"{self.urls['partners']}/v1/gaps", operator)
        loads = {
            org: self.call("GET", f"{self.urls['partners']}/v1/services/{service}/load", operator)
            for org, service in self.partner_services.items()
        }
        return {
            "signals": imported,
            "referrals_sent": sent,
            "cases_from_referrals": sum(1 for c in cases if c["origin"] == "referral"),
            "cases": len(cases),
            "cases_by_origin": dict(Counter(c["origin"] for c in cases)),
            "cases_by_status": dict(Counter(c["status"] for c in cases)),
            "cases_by_risk_level": dict(Counter(c["risk_level"] or "not assessed" for c in cases)),
            "offers": len(offers),
            "offers_per_partner": dict(
                Counter(o["partner_name"] or o["partner_id"] for o in offers)
            ),
            "offers_by_status": dict(Counter(o["status"] for o in offers)),
            "hand_ons": sum(1 for o in offers if o["status"] in ("declined", "expired")),
            "unroutable_reasons": {g["reason"]: g["cases"] for g in gaps},
            "seconds_from_referral_to_first_offer": {
                "median": sorted(waits)[len(waits) // 2] if waits else None,
                "max": max(waits) if waits else None,
            },
            "councils": {
                council: self.council_summary(council, cases, details)
                for council in (NEWHAM, HACKNEY)
            },
            "partners": [
                {
                    "name": name,
                    "councils": self.partner_councils[org],
                    "capacity": loads[org]["capacity"],
                    "open_now": loads[org]["open_offers_and_referrals"],
                    "paused": loads[org]["paused"],
                    "offers_by_status": dict(
                        Counter(o["status"] for o in offers if o["partner_id"] == org)
                    ),
                }
                for org, name in self.partners.items()
            ],
        }

    def council_summary(
        self, council: str, cases: list[dict[str, Any]], details: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """One council's part of the summary: the same counts, over its cases only."""
        own = [c for c in cases if c["council"] == council]
        offers = [o for d in details if d["council"] == council for o in d["offers"]]
        needs: dict[str, Counter[str]] = {}
        for case in own:
            for need, status in case["need_statuses"].items():
                needs.setdefault(need, Counter())[status] += 1
        return {
            "signals": self.imports[council],
            "cases": len(own),
            "cases_by_origin": dict(Counter(c["origin"] for c in own)),
            "cases_by_status": dict(Counter(c["status"] for c in own)),
            "needs_by_status": {need: dict(counts) for need, counts in sorted(needs.items())},
            "offers_by_status": dict(Counter(o["status"] for o in offers)),
            "offers_per_partner": {
                name: dict(
                    Counter(
                        o["status"]
                        for o in offers
                        if (o["partner_name"] or o["partner_id"]) == name
                    )
                )
                for name in sorted({o["partner_name"] or o["partner_id"] for o in offers})
            },
        }


def _only(council: str, lines):
    """The header, and the rows of one council's households (each data team sends its own)."""
    for number, line in enumerate(lines):
        if number == 0 or line.split(b",", 2)[1].decode() == council:
            yield line


# -- what is printed -------------------------------------------------------------------------

COUNCIL_NAMES = {NEWHAM: "Newham", HACKNEY: "Hackney"}
# An offer's end states, as the tables name them: accepted offers go on to an outcome.
OFFER_COLUMNS = [
    ("helped (outcome)", ("outcome_recorded",)),
    ("accepted, open", ("accepted", "in_progress")),
    ("declined", ("declined",)),
    ("lapsed", ("expired",)),
    ("offered", ("offered",)),
    ("withdrawn", ("withdrawn",)),
]


class DemoStack:
    """Where the demo's stack is, for what is printed while it is up; ``restart`` stops one
    of its processes and starts it again (``Stack.restart``)."""

    def __init__(
        self,
        state_dir: Path,
        urls: dict[str, str],
        restart: Callable[..., None] | None = None,
    ) -> None:
        self.state_dir, self.urls, self.restart = state_dir, urls, restart


def _table(title: str) -> Table:
    # As wide as its title at least: rich would wrap a long title over a narrow table.
    return Table(title=title, title_justify="left", min_width=len(title))


def _counts_table(title: str, counts: dict[str, int], label: str) -> Table:
    table = _table(title)
    table.add_column(label)
    table.add_column("count", justify="right")
    for key, value in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        table.add_row(key.replace("_", " "), str(value))
    table.add_row("total", str(sum(counts.values())), style="bold")
    return table


def _offer_cells(by_status: dict[str, int]) -> list[str]:
    return [str(sum(by_status.get(s, 0) for s in statuses)) for _, statuses in OFFER_COLUMNS]


def council_tables(council: str, part: dict[str, Any]) -> list[Table]:
    """The tables of one council: its feed, cases, needs, and offers by partner."""
    name = f"{COUNCIL_NAMES.get(council, council)} ({council})"
    signals = part["signals"]
    feed = _table(f"{name}: the signal feed")
    for column in ("households read", "stored", "rejected", "flagged", "outreach cases opened"):
        feed.add_column(column, justify="right")
    feed.add_row(
        str(signals["rows_read"]),
        str(signals["rows_stored"]),
        str(signals["rows_rejected"]),
        str(signals["flagged"]),
        str(part["cases_by_origin"].get("flag", 0)),
    )
    statuses = sorted({s for counts in part["needs_by_status"].values() for s in counts})
    needs = _table(f"{name}: needs by status")
    needs.add_column("need")
    for status in statuses:
        needs.add_column(status.replace("_", " "), justify="right")
    for need, counts in part["needs_by_status"].items():
        needs.add_row(need.replace("_", " "), *(str(counts.get(s, 0)) for s in statuses))
    offers = _table(f"{name}: offers by partner")
    offers.add_column("partner")
    for label, _ in OFFER_COLUMNS:
        offers.add_column(label, justify="right")
    for partner, by_status in part["offers_per_partner"].items():
        offers.add_row(partner, *_offer_cells(by_status))
    offers.add_row("all partners", *_offer_cells(part["offers_by_status"]), style="bold")
    return [
        feed,
        _counts_table(f"{name}: cases by status", part["cases_by_status"], "status"),
        needs,
        offers,
    ]


def partners_table(partners: list[dict[str, Any]]) -> Table:
    table = _table("Partners' load at the end of the day")
    table.add_column("partner")
    table.add_column("councils")
    table.add_column("capacity", justify="right")
    table.add_column("open now", justify="right")
    table.add_column("offers received", justify="right")
    table.add_column("accepted", justify="right")
    for partner in partners:
        by_status = partner["offers_by_status"]
        accepted = sum(by_status.get(s, 0) for s in ("accepted", "in_progress", "outcome_recorded"))
        table.add_row(
            partner["name"] + (" (paused)" if partner["paused"] else ""),
            ", ".join(COUNCIL_NAMES.get(c, c) for c in partner["councils"]),
            str(partner["capacity"]),
            str(partner["open_now"]),
            str(sum(by_status.values())),
            str(accepted),
        )
    return table


def manager_token(auth: AuthSettings, council: str) -> str:
    """A council service manager's token: who reads the council's reports."""
    return mint_token(
        auth,
        subject=f"demo-manager-{council}",
        organisation=council,
        kind=OrganisationKind.COUNCIL,
        roles=[Role.MANAGER],
    )


def reporting_figures(
    http: httpx.Client, referrals_url: str, auth: AuthSettings, council: str
) -> dict[str, Any]:
    """A council's outcome figures and rule evaluation from the reporting model, for today
    (the demo's day) and the days before it."""
    headers = {"Authorization": f"Bearer {manager_token(auth, council)}"}
    figures = {}
    for name in ("outcomes", "rules"):
        response = http.get(f"{referrals_url}/v1/reports/{council}/{name}", headers=headers)
        response.raise_for_status()
        figures[name] = response.json()
    return figures


def _offers_counted(outcomes: dict[str, Any]) -> int:
    return sum(row["offers"] for row in outcomes["offer_responses"])


def wait_for_reporting(
    http: httpx.Client,
    referrals_url: str,
    auth: AuthSettings,
    offers: dict[str, int],
    timeout: float = 60.0,
) -> dict[str, dict[str, Any]]:
    """Each council's figures once the reporting model (a consumer group of its own, a
    little behind the cases) holds every offer the APIs show (``offers``, per council)."""
    deadline = time.monotonic() + timeout
    while True:
        figures = {c: reporting_figures(http, referrals_url, auth, c) for c in offers}
        if all(_offers_counted(f["outcomes"]) == offers[c] for c, f in figures.items()):
            return figures
        if time.monotonic() > deadline:
            return figures  # printed as they are: the tables say what the model holds
        time.sleep(1)


def _hours(value: float | None) -> str:
    """A duration given in hours, in the unit that reads best: the demo's day passes in
    seconds, a council's month in hours and days."""
    if value is None:
        return ""
    seconds = value * 3600
    if seconds < 120:
        return f"{seconds:.0f} s"
    if value < 2:
        return f"{seconds / 60:.1f} min"
    return f"{value:.1f} h"


def reporting_tables(council: str, figures: dict[str, Any]) -> list[Table]:
    """A council's tables from the reporting model: offers by response, times to help,
    needs by area, and the rule evaluation (flag to help, per rule)."""
    name = f"{COUNCIL_NAMES.get(council, council)} ({council})"
    outcomes, rules = figures["outcomes"], figures["rules"]
    responses = _table(f"{name}: offers by response (reporting model)")
    responses.add_column("response")
    responses.add_column("reason")
    responses.add_column("offers", justify="right")
    for row in outcomes["offer_responses"]:
        responses.add_row(row["response"], row["reason"].replace("_", " "), str(row["offers"]))
    times = _table(f"{name}: time from referral (reporting model)")
    for column in ("to", "cases", "median", "90th percentile"):
        times.add_column(column, justify="left" if column == "to" else "right")
    for row in outcomes["durations"]:
        times.add_row(
            row["measure"].removeprefix("time_to_").replace("_", " "),
            str(row["cases"]),
            _hours(row["median_hours"]),
            _hours(row["p90_hours"]),
        )
    areas = _table(f"{name}: needs by area (reporting model)")
    states = ("met", "not_met", "unroutable", "waiting", "in_progress", "closed", "withdrawn")
    areas.add_column("area")
    for state in states:
        areas.add_column(state.replace("_", " "), justify="right")
    for row in outcomes["needs_by_area"]:
        areas.add_row(row["area"], *(str(row[state]) for state in states))
    evaluation = _table(f"{name}: rule evaluation (flag to help, per rule)")
    evaluation.add_column("ruleset")
    evaluation.add_column("rule")
    for column in (
        "residents flagged",
        "outreach cases",
        "consent",
        "routed",
        "helped",
        "flag to help",
        "median time to help",
    ):
        evaluation.add_column(column, justify="right")
    for row in rules["rules"]:
        flagged = row["residents_flagged"]
        evaluation.add_row(
            row["ruleset_version"],
            row["rule_id"],
            str(flagged),
            str(row["outreach_cases_opened"]),
            str(row["consent_obtained"]),
            str(row["routed"]),
            str(row["positive_outcome"]),
            f"{row['positive_outcome'] / flagged:.0%}" if flagged else "",
            _hours(row["flag_to_help_median_hours"]),
        )
    return [responses, times, areas, evaluation]


def show_reporting_tables(
    console: Console,
    referrals_url: str,
    auth: AuthSettings,
    councils: list[str],
    offers: dict[str, int],
) -> None:
    """The reporting model's tables for each council, from ``GET {referrals_url}/v1/reports/
    {council}/outcomes`` and ``…/rules`` with a manager's token, once the model holds the
    day's ``offers`` (per council, as counted over the APIs)."""
    with httpx.Client(timeout=60) as http:
        figures = wait_for_reporting(http, referrals_url, auth, {c: offers[c] for c in councils})
    for council in councils:
        for table in reporting_tables(council, figures[council]):
            console.print(table)
            console.print()


def show_summary(
    console: Console, summary: dict[str, Any], stack: DemoStack, *, keep: bool, auth: AuthSettings
) -> None:
    """The day as tables, then the addresses a newcomer can open."""
    seconds = summary["seconds_from_referral_to_first_offer"]
    console.print(
        f"\n[bold]The demo day[/bold] ({summary['seconds']} s): {summary['referrals_sent']} "
        f"referrals sent, {summary['signals']['rows_read']} households' signals read, "
        f"{summary['cases']} cases, {summary['offers']} offers ({summary['hand_ons']} handed "
        "on after a decline or a lapse); median time from referral to first offer "
        + (f"{seconds['median']:.1f} s" if seconds["median"] is not None else "none")
        + ". Every number is read back from the services' APIs.\n",
        highlight=False,
    )
    for council, part in summary["councils"].items():
        for table in council_tables(council, part):
            console.print(table)
            console.print()
    console.print(partners_table(summary["partners"]))
    console.print()
    if summary["unroutable_reasons"]:
        console.print(
            _counts_table(
                "Gaps in service (needs no partner could take)",
                summary["unroutable_reasons"],
                "reason",
            )
        )
        console.print()
    operator = mint_token(
        auth,
        subject="demo-operator",
        organisation="operator",
        kind=OrganisationKind.OPERATOR,
        roles=[Role.OPERATOR],
    )
    show_reporting_tables(
        console,
        stack.urls["referrals"],
        auth,
        list(summary["councils"]),
        {c: sum(part["offers_by_status"].values()) for c, part in summary["councils"].items()},
    )
    for line in addresses(stack, list(summary["councils"]), keep=keep, operator_token=operator):
        console.print(line, soft_wrap=True, highlight=False)


def addresses(
    stack: DemoStack, councils: list[str], *, keep: bool, operator_token: str
) -> list[str]:
    """What a newcomer can open, on the demo's own ports."""
    urls = stack.urls
    lines = [
        "[bold]Open[/bold]"
        + ("" if keep else " (the stack stops now: `make demo KEEP=1` keeps it up to look)"),
        f"  {'partner web inbox':<30} {urls['partners']}/inbox",
        f"  {'':<30} sign in as the demo food bank: "
        f"UPSTREAM_STATE_DIR={stack.state_dir} .venv/bin/upstream inbox-link",
    ]
    for council in councils:
        name = COUNCIL_NAMES.get(council, council)
        lines += [
            f"  {name + ' transparency record':<30} "
            f"{urls['risk']}/v1/transparency/{council}?format=html",
            f"  {name + ' reporting pages':<30} {urls['referrals']}/reports/{council}",
        ]
    lines += [f"  {name + ' Swagger UI':<30} {urls[name]}/docs" for name in SERVICE_NAMES]
    if keep:
        lines += [
            "  an operator's token for the Swagger UIs (Authorize), valid 12 hours:",
            f"    {operator_token}",
            "  a council manager's: .venv/bin/upstream token --organisation E09000025 "
            "--kind council --role manager",
        ]
    return lines


def main(
    referrals: int,
    households: int,
    echo: Callable[[str], None] = print,
    *,
    console: Console | None = None,
    keep: bool = False,
    json_to: str | None = None,
) -> dict[str, Any]:
    """Run the day and print it as tables. ``json_to``: also write the summary as JSON, to
    that file, or to standard output for ``-`` (then the tables go to standard error)."""
    auth = AuthSettings()
    if console is None:
        console = Console(stderr=json_to == "-")

    def show(summary: dict[str, Any], stack: DemoStack) -> None:
        show_summary(console, summary, stack, keep=keep, auth=auth)
        if json_to == "-":
            sys.stdout.write(json.dumps(summary, indent=2) + "\n")
            sys.stdout.flush()
        elif json_to:
            Path(json_to).write_text(json.dumps(summary, indent=2) + "\n")
            echo(f"summary as JSON: {json_to}")

    return Demo(referrals=referrals, households=households, echo=echo).run(show=show, keep=keep)
