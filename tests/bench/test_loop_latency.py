"""Referral → offer in the partner's inbox, across the three services as processes on a
stack of their own (``make bench``): every referral is timed from its POST to the moment
the partner's inbox lists its offer (the inbox is read every 10 ms). Beside it, the bare
floor in the same run: a round trip to the referrals API's ``/healthz``.
Printed, not asserted; ``UPSTREAM_BENCH_LOOP_REFERRALS`` and ``…_RATE`` change the load."""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx

from devtools.embedded import free_port
from devtools.stack import Stack, StackSettings
from shared.auth import OrganisationKind, Role, mint_token
from shared.settings import AuthSettings

NEWHAM = "E09000025"
REFERRALS = int(os.environ.get("UPSTREAM_BENCH_LOOP_REFERRALS", "200"))
RATE = float(os.environ.get("UPSTREAM_BENCH_LOOP_RATE", "20"))  # referrals a second


def header(organisation: str, kind: OrganisationKind, role: Role) -> dict[str, str]:
    token = mint_token(
        AuthSettings(), subject="bench", organisation=organisation, kind=kind, roles=[role]
    )
    return {"Authorization": f"Bearer {token}"}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def referral(index: int) -> dict[str, object]:
    return {
        "resident": {
            "given_name": f"Bench{index}",
            "family_name": "Loop",
            "date_of_birth": f"19{50 + index % 40}-0{1 + index % 9}-1{index % 9}",
            "contact": {"phone": "07700 900123", "preferred": "phone"},
            "address": {"postcode": "E15 4HT"},
        },
        "needs": ["food"],
        "urgency": "high",
        "sharing": {
            "lawful_basis": "consent",
            "consent": {
                "given_by": "the resident",
                "method": "verbal",
                "given_at": "2026-11-20T10:00:00Z",
                "partner_kinds": ["food"],
            },
        },
    }


def test_referral_to_offer_in_the_inbox() -> None:
    with tempfile.TemporaryDirectory(prefix="upstream-bench-loop-") as state:
        settings = StackSettings(
            state_dir=Path(state),
            referrals_port=free_port(),
            risk_port=free_port(),
            partners_port=free_port(),
            broker_port=free_port(),
            worker_metrics_port_offset=1000,
        )
        stack = Stack(settings, echo=lambda _: None)
        stack.start()
        try:
            measure(settings)
        finally:
            stack.stop()


def measure(settings: StackSettings) -> None:
    referrals = f"http://127.0.0.1:{settings.api_port('referrals')}"
    partners = f"http://127.0.0.1:{settings.api_port('partners')}"
    operator = header("operator", OrganisationKind.OPERATOR, Role.OPERATOR)
    caseworker = header(NEWHAM, OrganisationKind.COUNCIL, Role.CASEWORKER)
    with httpx.Client(timeout=10) as http:
        org = http.post(
            f"{partners}/v1/organizations",
            headers=operator,
            json={
                "name": "Bench Food Bank",
                "description": "a food bank",
                "kind": "food",
                "agreement": {"lawful_bases": ["consent"]},
            },
        ).json()["id"]
        http.post(
            f"{partners}/v1/services",
            headers=operator,
            json={
                "organization_id": org,
                "name": "Bench Food Bank",
                "description": "food parcels",
                "needs": ["food"],
                "councils": [NEWHAM],
                "languages": ["en"],
                "capacity": 10_000,
            },
        ).raise_for_status()
        partner = header(org, OrganisationKind.VCS, Role.PARTNER)
        floor = []
        for _ in range(50):
            started = time.perf_counter()
            http.get(f"{referrals}/healthz").raise_for_status()
            floor.append(time.perf_counter() - started)

        sent_at: dict[str, float] = {}
        offered_at: dict[str, float] = {}
        done = threading.Event()
        # Warm up: the consumer groups settle after a start; one referral through first.
        warming = http.post(
            f"{referrals}/v1/referrals",
            headers={**caseworker, "Idempotency-Key": "bench-warm-up"},
            json={**referral(REFERRALS + 1), "council": NEWHAM},
        )
        assert warming.status_code == 201, warming.text
        warm = warming.json()["case_id"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(
            o["case_id"] == warm
            for o in http.get(f"{partners}/v1/inbox/offers", headers=partner).json()
        ):
            time.sleep(0.05)

        def watch_inbox() -> None:
            with httpx.Client(timeout=10) as inbox:
                while not done.is_set():
                    seen = time.perf_counter()
                    for offer in inbox.get(f"{partners}/v1/inbox/offers", headers=partner).json():
                        offered_at.setdefault(offer["case_id"], seen)
                    time.sleep(0.01)

        watcher = threading.Thread(target=watch_inbox, daemon=True)
        watcher.start()
        for index in range(REFERRALS):
            started = time.perf_counter()
            answer = http.post(
                f"{referrals}/v1/referrals",
                headers={**caseworker, "Idempotency-Key": f"bench-{index}"},
                json={**referral(index), "council": NEWHAM},
            )
            answer.raise_for_status()
            sent_at[answer.json()["case_id"]] = started
            time.sleep(max(0.0, 1 / RATE - (time.perf_counter() - started)))
        deadline = time.monotonic() + 60
        while len(set(sent_at) & set(offered_at)) < len(sent_at) and time.monotonic() < deadline:
            time.sleep(0.05)
        done.set()
        watcher.join()

    latencies = [offered_at[c] - sent_at[c] for c in sent_at if c in offered_at]
    print(f"\n{len(latencies)} of {len(sent_at)} referrals offered, at {RATE:g} referrals/s")
    print(f"{'':34}{'p50':>9}{'p95':>9}{'p99':>9}")
    for name, values in (
        ("referral → offer in the inbox", latencies),
        ("bare: GET /healthz", floor),
    ):
        print(
            f"{name:34}"
            + "".join(f"{percentile(values, q) * 1000:>7.0f}ms" for q in (0.5, 0.95, 0.99))
        )
    print(
        f"goal: p50 ≤ 100 ms, p99 ≤ 500 ms; median ratio to the floor "
        f"{statistics.median(latencies) / statistics.median(floor):.0f}x"
    )
