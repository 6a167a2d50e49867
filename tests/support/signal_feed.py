"""A council's signal feed of any size, like the demo's, written fast (for ``make bench``).

Households are made the way ``devtools.demo`` makes them (its names and postcode districts),
each with one to three signals of different types (about 1.67 a household on average, so a
million rows describe about 600,000 households), in a shuffled order: a real feed joins the
extracts of several systems, so one household's rows are spread through the file.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path

from devtools.demo import DISTRICTS, FAMILY, GIVEN, NEWHAM

HEADER = (
    "type,council,given_name,family_name,date_of_birth,postcode,source,observed_on,"
    "weeks,amount,stage,kind,notice_type,notice_date,utility\n"
)
KINDS = [
    "rent_arrears",
    "council_tax_arrears",
    "benefit_sanction",
    "disconnection_risk",
    "eviction_notice",
    "job_loss",
]
_WEIGHTS = [50, 25, 12, 10, 3, 8]
_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"
SIGNALS_A_HOUSEHOLD = (1, 1, 1, 2, 2, 3)  # 1.67 on average


def _cells(kind: str, rng: random.Random, observed: str) -> str:
    if kind == "rent_arrears":  # most arrears are short: a few weeks, rarely eight or more
        weeks = rng.choice((1, 1, 2, 2, 3, 3, 4, 5, 6, 8, 10, 12))
        return f"{weeks},{rng.randint(100, 2500)},,,,,"
    if kind == "council_tax_arrears":
        stage = rng.choice(("reminder", "summons", "enforcement"))
        return f",{rng.randint(100, 1500)},{stage},,,,"
    if kind == "benefit_sanction":
        return ",,,sanction,,,"
    if kind == "disconnection_risk":
        return ",,,,,,gas"
    if kind == "eviction_notice":
        return f",,,,section_21,{observed},"
    return ",,,,,,"


def write_feed(path: Path, rows: int, *, council: str = NEWHAM, seed: int = 2026) -> int:
    """Write ``rows`` signal rows (and a header) to ``path``; returns the households."""
    rng = random.Random(seed)
    today = date.today()
    districts = DISTRICTS.get(council, DISTRICTS[NEWHAM])
    days = [(today - timedelta(days=n)).isoformat() for n in range(1, 61)]
    lines: list[str] = []
    households = 0
    while len(lines) < rows:
        households += 1
        given, family = rng.choice(GIVEN), rng.choice(FAMILY)
        born = date(rng.randint(1940, 2004), rng.randint(1, 12), rng.randint(1, 28)).isoformat()
        postcode = (
            f"{rng.choice(districts)} {rng.randint(1, 9)}{rng.choice(_LETTERS)}"
            f"{rng.choice(_LETTERS)}"
        )
        who = f"{council},{given},{family},{born},{postcode},council-feed"
        count = rng.choice(SIGNALS_A_HOUSEHOLD)
        kinds: set[str] = set()
        while len(kinds) < count:
            kinds.add(rng.choices(KINDS, weights=_WEIGHTS)[0])
        for kind in sorted(kinds):
            observed = rng.choice(days)
            lines.append(f"{kind},{who},{observed},{_cells(kind, rng, observed)}\n")
    del lines[rows:]
    rng.shuffle(lines)
    with path.open("w", encoding="utf-8") as handle:
        handle.write(HEADER)
        for start in range(0, len(lines), 65536):
            handle.write("".join(lines[start : start + 65536]))
    return households
