"""Referral → offer in the partner's inbox (issue 13, goal 3), across the three services as
processes on a stack of their own (``make bench``): every referral is timed from its POST
to the moment the partner's inbox lists its offer (``tests/bench/loop.py``). Beside it, the
bare floor in the same run: a round trip to the referrals API's ``/healthz``.
Printed, not asserted; ``UPSTREAM_BENCH_LOOP_REFERRALS`` and ``…_RATE`` change the load."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from devtools.embedded import free_port
from devtools.stack import SERVICE_NAMES, Stack, StackSettings
from tests.bench.goals import Measured, show
from tests.bench.loop import Loop, hops, percentile, stack_cpu

REFERRALS = int(os.environ.get("UPSTREAM_BENCH_LOOP_REFERRALS", "200"))
RATE = float(os.environ.get("UPSTREAM_BENCH_LOOP_RATE", "20"))  # referrals a second
GOAL_P50, GOAL_P99 = 0.100, 0.500


def stack_settings(state: str) -> StackSettings:
    return StackSettings(
        state_dir=Path(state),
        referrals_port=free_port(),
        risk_port=free_port(),
        partners_port=free_port(),
        broker_port=free_port(),
        worker_metrics_port_offset=1000,
        log_level="WARNING",
    )


def test_referral_to_offer_in_the_inbox(request: pytest.FixtureRequest) -> None:
    with tempfile.TemporaryDirectory(prefix="upstream-bench-loop-") as state:
        settings = stack_settings(state)
        stack = Stack(settings, echo=lambda _: None)
        stack.start()
        try:
            loop = Loop.open(
                f"http://127.0.0.1:{settings.api_port('referrals')}",
                f"http://127.0.0.1:{settings.api_port('partners')}",
                stack.database_urls["partners"],
            )
            floor = loop.healthz_floor()
            before = stack_cpu(stack)
            latencies = loop.measure(REFERRALS, rate=RATE, label="loop")
            after = stack_cpu(stack)
            journey = hops([stack.worker_metrics_url(name) for name in SERVICE_NAMES])
        finally:
            stack.stop()

    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    per_referral = [
        (name.replace("-", " "), (after[name] - before[name]) * 1000 / REFERRALS)
        for name in sorted(after)
    ]
    floor50, floor99 = percentile(floor, 0.5), percentile(floor, 0.99)
    show(
        request,
        f"Referral -> offer in the inbox: {len(latencies)} of {REFERRALS} referrals offered, "
        f"at {RATE:g} referrals/s (baseline: GET /healthz of the referrals API)",
        [
            Measured(
                f"referral -> offer p50 (ms), {RATE:g}/s",
                f"{p50 * 1000:.0f}",
                f"{floor50 * 1000:.1f}",
                f"{p50 / floor50:.0f}x",
                f"<= {GOAL_P50 * 1000:.0f} ms",
                p50 <= GOAL_P50,
                goal_of_issue_13=3,
            ),
            Measured(
                f"referral -> offer p99 (ms), {RATE:g}/s",
                f"{p99 * 1000:.0f}",
                f"{floor99 * 1000:.1f}",
                f"{p99 / floor99:.0f}x",
                f"<= {GOAL_P99 * 1000:.0f} ms",
                p99 <= GOAL_P99 and len(latencies) == REFERRALS,
                goal_of_issue_13=3,
            ),
            Measured(
                "referral -> offer p95 (ms)",
                f"{percentile(latencies, 0.95) * 1000:.0f}",
                f"{percentile(floor, 0.95) * 1000:.1f}",
                f"{percentile(latencies, 0.95) / percentile(floor, 0.95):.0f}x",
                "",
                None,
            ),
            # What a referral costs, whatever else the machine is doing: CPU, process by
            # process (its whole journey: intake, assessment, routing, reporting).
            Measured(
                "CPU a referral (ms): " + ", ".join(f"{k} {v:.1f}" for k, v in per_referral),
                f"{sum(v for _, v in per_referral):.1f}",
                "",
                "",
                "",
                None,
            ),
            # Where the time goes: each hop of every event the workers handled, from their
            # /metrics (bucket bounds: the median's and the 99th percentile's bucket).
            *(
                Measured(
                    f"hop: {hop.name}, mean (p50 / p99 bucket), {hop.count} events",
                    f"{hop.mean * 1000:.1f} ms (<= {hop.p50 * 1000:g} / {hop.p99 * 1000:g})",
                    "",
                    "",
                    "",
                    None,
                )
                for hop in journey
            ),
        ],
    )
