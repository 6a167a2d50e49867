"""Names from every script, end to end: two different people with names in Arabic, Chinese,
Cyrillic or Greek, born the same day at the same postcode, are two residents with two cases;
a name with no letter is refused; and the stored forms of names written before are brought
up to date by the migration."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import text

from devtools.embedded import drop_database, ensure_database, with_database
from devtools.stack import load_service
from shared.db import create_engine
from shared.migrations import upgrade
from tests.integration.referrals.conftest import ReferralsApi, referral

pytestmark = pytest.mark.integration

PAIRS = [
    ("Arabic", ("محمد", "الحسن"), ("أحمد", "الحسن")),
    ("Chinese", ("伟", "王"), ("芳", "王")),
    ("Cyrillic", ("Иван", "Петров"), ("Олег", "Петров")),
    ("Greek", ("Γιώργος", "Παπαδόπουλος"), ("Νίκος", "Παπαδόπουλος")),
]


def _named(given: str, family: str) -> dict[str, Any]:
    return referral(resident={"given_name": given, "family_name": family})


@pytest.mark.parametrize(("script", "one", "other"), PAIRS, ids=[p[0] for p in PAIRS])
async def test_two_people_with_names_in_another_script_are_not_one_case(
    api: ReferralsApi, script: str, one: tuple[str, str], other: tuple[str, str]
) -> None:
    first = await api.refer(_named(*one))
    second = await api.refer(_named(*other))
    assert first.status_code == second.status_code == 201, second.text
    assert second.json()["attached_to_open_case"] is False
    assert second.json()["case_id"] != first.json()["case_id"]
    assert await api.count("residents") == 2 and await api.count("cases") == 2
    assert await api.count("residents", "norm_given = '' OR norm_family = ''") == 0
    (a, b) = [e["resident_keys"] for e in await api.events("referrals.referral.received")]
    assert not set(a) & set(b)  # the risk service holds them apart too

    # The same person written another way (case, accents, spacing) is the same resident.
    again = await api.refer(_named(f" {one[0].upper()} ", one[1].upper()))
    assert again.json()["attached_to_open_case"] is True
    assert again.json()["case_id"] == first.json()["case_id"]


@pytest.mark.parametrize("field", ["given_name", "family_name"])
@pytest.mark.parametrize("name", ["---", "123", "?!", "\u0301"])
async def test_a_name_without_a_letter_is_refused_naming_the_field(
    api: ReferralsApi, field: str, name: str
) -> None:
    response = await api.refer(referral(resident={field: name}))
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [f"resident.{field}"]
    assert "must contain a letter" in response.json()["errors"][0]["reason"]
    for table in ("residents", "cases", "referrals", "outbox"):
        assert await api.count(table) == 0, table


async def test_the_migration_recomputes_the_normalised_names_stored_before(
    postgres_admin_url: str,
) -> None:
    name = f"test_referrals_{uuid.uuid4().hex[:10]}"
    await ensure_database(postgres_admin_url, name)
    url = with_database(postgres_admin_url, name)
    service = load_service("referrals")
    engine = create_engine(url, pool_size=1)
    insert = text(
        "INSERT INTO residents (id, council, given_name, family_name, norm_given, norm_family,"
        " preferred_contact, preferred_language, interpreter_needed)"
        " VALUES (:id, 'E09000025', :given, :family, :ng, :nf, 'letter', 'en', false)"
    )
    try:
        upgrade(service, url, "0002")
        async with engine.begin() as connection:
            for given, family, ng, nf in [
                ("Иван", "Петров", "", ""),  # as the old normalisation stored them
                ("Amina", "O'Brien", "amina", "obrien"),
                ("Zoë", "Łukasz", "zoe", "ukasz"),
            ]:
                await connection.execute(
                    insert,
                    {"id": str(uuid.uuid4()), "given": given, "family": family, "ng": ng, "nf": nf},
                )
        upgrade(service, url)
        async with engine.connect() as connection:
            rows = (
                await connection.execute(
                    text("SELECT given_name, norm_given, norm_family FROM residents")
                )
            ).all()
        assert sorted((r[0], r[1], r[2]) for r in rows) == [
            ("Amina", "amina", "obrien"),
            ("Zoë", "zoe", "lukasz"),
            ("Иван", "иван", "петров"),
        ]
    finally:
        await engine.dispose()
        await drop_database(postgres_admin_url, name)
