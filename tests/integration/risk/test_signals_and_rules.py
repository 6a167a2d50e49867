"""Signals, rules, assessments and flags against a real PostgreSQL (and broker)."""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from shared.events.envelope import utc_now
from shared.events.payloads import CaseOpened, ReferralReceived
from shared.identity import resident_keys, unseal_identity
from shared.messaging.consumer import EventConsumer
from shared.vocabulary import Circumstance, Need, RiskLevel
from tests.integration.messaging_helpers import read_topic, wait_for
from tests.integration.risk.conftest import RiskApi
from tests.support.infrastructure import Broker
from tests.support.services import Publisher

pytestmark = pytest.mark.integration

TODAY = date.today()
RECENT = (TODAY - timedelta(days=3)).isoformat()
HEADER = (
    "type,council,given_name,family_name,date_of_birth,postcode,address,phone,"
    "council_reference,source,observed_on,weeks,amount,stage,notice_type,notice_date\n"
)

ADDRESS = '"Flat 3, 12 Romford Road\nStratford"'  # a quoted cell over two lines


def csv_row(
    risk: RiskApi,
    kind: str,
    *,
    given: str = "Amina",
    family: str = "Okafor",
    born: str = "1984-03-02",
    postcode: str = "E15 4HT",
    weeks: str = "",
    amount: str = "",
    stage: str = "",
    notice_type: str = "",
    notice_date: str = "",
    observed: str = RECENT,
    council: str | None = None,
    address: str = ADDRESS,
) -> str:
    return (
        f"{kind},{council or risk.council},{given},{family},{born},{postcode},"
        f"{address},07700 900123,HB-22817,newham-rent,{observed},"
        f"{weeks},{amount},{stage},{notice_type},{notice_date}\n"
    )


def feed(risk: RiskApi) -> str:
    return HEADER + "".join(
        [
            csv_row(risk, "rent_arrears", weeks="3", amount="420.50"),
            csv_row(
                risk,
                "council_tax_arrears",
                given="Tomasz",
                family="Nowak",
                born="1971-06-09",
                postcode="E13 9PJ",
                amount="840",
                stage="enforcement",
            ),
            csv_row(risk, "rent_arrears", weeks="-1", amount="10"),  # bad attribute
            csv_row(risk, "rent_areas", weeks="3"),  # unknown type
            csv_row(risk, "rent_arrears", postcode="N1 9GUX", weeks="9", amount="1"),  # bad one
            csv_row(risk, "job_loss", born="", postcode=""),  # cannot be matched
            csv_row(risk, "job_loss", council="E09000001"),  # another council's resident
            csv_row(risk, "job_loss", observed="2999-01-01"),  # observed in the future
        ]
    )


async def test_import_keeps_good_rows_reports_bad_ones_and_a_repeat_changes_nothing(
    risk: RiskApi,
) -> None:
    report = await risk.upload(feed(risk))
    assert (report["rows_read"], report["rows_stored"], report["rows_rejected"]) == (8, 2, 6)
    # The header, then eight records of two lines each.
    assert (report["lines_read"], report["lines_skipped"], report["lines_joined"]) == (17, 1, 8)
    assert accounted(report)
    problems = {(e["line"], e["field"]) for e in report["errors"]}
    # Each record spans two lines of the file (its quoted address holds a line break).
    assert problems == {
        (6, "attributes.weeks"),
        (8, "type"),
        (10, "resident.postcode"),
        (12, "resident"),
        (14, "council"),
        (16, "observed_on"),
    }
    reasons = {e["field"]: e["reason"] for e in report["errors"]}
    assert "greater than or equal to 0" in reasons["attributes.weeks"]
    assert "not a UK postcode" in reasons["resident.postcode"]
    assert "9GUX" not in str(report).upper()  # the report names the field, never the value
    assert "is not your council" in reasons["council"]

    again = await risk.upload(feed(risk))
    assert (again["rows_stored"], again["rows_duplicate"], again["flagged"]) == (0, 2, 0)
    assert await risk.count("signals") == 2 and await risk.count("profiles") == 2


async def test_json_batches_report_each_bad_item(risk: RiskApi) -> None:
    good = {
        "type": "bereavement",
        "council": risk.council,
        "source": "newham-registrars",
        "observed_on": RECENT,
        "resident": {"given_name": "Amina", "family_name": "Okafor", "postcode": "e15 4ht"},
    }
    bad = {**good, "observed_on": "yesterday"}
    response = await risk.client.post("/v1/signals", json=[good, bad], headers=risk.token())
    body = response.json()
    assert (body["rows_stored"], body["rows_rejected"]) == (1, 1)
    assert body["errors"] == [
        {
            "line": 2,
            "field": "observed_on",
            "reason": "Input should be a valid date or datetime, input is too short",
        }
    ]
    caseworker = await risk.client.post("/v1/signals", json=good, headers=risk.token("caseworker"))
    assert caseworker.status_code == 403


async def test_no_table_holds_a_direct_identifier(risk: RiskApi) -> None:
    flagged = HEADER + csv_row(
        risk, "eviction_notice", notice_type="section_21", notice_date=RECENT
    )
    await risk.upload(feed(risk))
    report = await risk.upload(flagged)
    assert report["flagged"] == 1  # even what a flag carries is not readable here
    identifiers = [
        "Amina",
        "Okafor",
        "Tomasz",
        "Nowak",
        "1984-03-02",
        "1971-06-09",
        "E15 4HT",
        "E13 9PJ",
        "E154HT",
        "Romford",
        "07700 900123",
        "HB-22817",
    ]
    async with risk.engine.connect() as connection:
        tables = (
            await connection.scalars(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            )
        ).all()
        assert {"profiles", "signals", "outbox", "assessments"} <= set(tables)
        for table in tables:
            rows = (await connection.scalars(text(f'SELECT t::text FROM "{table}" t'))).all()
            for row in rows:
                for identifier in identifiers:
                    assert identifier.lower() not in row.lower(), f"{identifier} in {table}"


async def test_crossing_the_threshold_flags_a_resident_exactly_once(risk: RiskApi) -> None:
    first = await risk.upload(HEADER + csv_row(risk, "rent_arrears", weeks="3", amount="420"))
    assert first["flagged"] == 0 and await risk.events("risk.resident.flagged") == []

    notice = HEADER + csv_row(risk, "eviction_notice", notice_type="section_8", notice_date=RECENT)
    crossed = await risk.upload(notice)
    assert crossed["flagged"] == 1
    assert (await risk.upload(notice))["flagged"] == 0  # the same file again
    # A new signal, still no higher than crisis, within the cooling-off period: no new flag.
    more = await risk.upload(HEADER + csv_row(risk, "job_loss"))
    assert more["rows_stored"] == 1 and more["flagged"] == 0

    (flag,) = await risk.events("risk.resident.flagged")
    assert flag["level"] == "crisis" and flag["council"] == risk.council
    assert [r["rule_id"] for r in flag["reasons"]] == ["eviction-notice", "rent-arrears"]
    secret = risk.settings.resident_key_secret.get_secret_value()
    identity = unseal_identity(secret, flag["sealed_identity"])
    assert identity["given_name"] == "Amina" and identity["council_reference"] == "HB-22817"
    assert (
        flag["resident_key"]
        == resident_keys(
            secret,
            council=risk.council,
            given_name="Amina",
            family_name="Okafor",
            date_of_birth=date(1984, 3, 2),
        )[0]
    )

    why = await risk.client.get(
        f"/v1/residents/{flag['resident_key']}/assessment", headers=risk.token("caseworker")
    )
    assert why.status_code == 200
    assert why.json()["explanation"].startswith("This shows a possible crisis")
    other = await risk.client.get(
        f"/v1/residents/{flag['resident_key']}/assessment", headers=risk.token("other_council")
    )
    assert other.status_code == 404


async def test_a_referral_is_assessed_with_the_signals_held_for_the_resident(
    risk: RiskApi, risk_consumer: EventConsumer, publisher: Publisher
) -> None:
    await risk.upload(HEADER + csv_row(risk, "rent_arrears", weeks="10", amount="1300"))
    secret = risk.settings.resident_key_secret.get_secret_value()
    keys = resident_keys(
        secret,
        council=risk.council,
        given_name="AMINA",
        family_name="okafor",
        date_of_birth=date(1984, 3, 2),
        postcode="e15 4ht",
    )
    case_id = str(uuid.uuid4())
    await publisher.send(
        ReferralReceived(
            case_id=case_id,
            referral_id=str(uuid.uuid4()),
            council=risk.council,
            resident_keys=keys,
            age_years=42,
            needs=["food"],
            circumstances=["children_in_household"],
            urgency="medium",
            received_at=utc_now(),
        ),
        subject=case_id,
        source="/upstream/referrals",
    )

    async def assessed() -> list[dict[str, Any]]:
        # (This case's: another test's referral on the shared topic is assessed here too.)
        found = await risk.events("risk.case.assessed")
        return [event for event in found if event["case_id"] == case_id]

    (assessment,) = await wait_for(assessed, timeout=30, what="an assessment")
    assert assessment["case_id"] == case_id and assessment["level"] == "high"
    reasons = {r["rule_id"]: r["explanation"] for r in assessment["reasons"]}
    assert reasons["rent-arrears-8-weeks"].startswith("Your rent account showed 10 weeks")
    assert assessment["ruleset_version"].startswith("default@")

    why = await risk.client.get(f"/v1/cases/{case_id}/assessment", headers=risk.token("caseworker"))
    assert why.json()["level"] == "high" and "10 weeks of arrears" in why.json()["explanation"]
    # With an open case, new signals re-assess the case instead of flagging the resident.
    notice = await risk.upload(
        HEADER + csv_row(risk, "eviction_notice", notice_type="warrant", notice_date=RECENT)
    )
    assert (notice["flagged"], notice["cases_assessed"]) == (0, 1)
    assert [a["level"] for a in await assessed()] == ["high", "crisis"]


async def test_a_referral_of_a_resident_named_only_by_name_is_assessed_once(
    risk: RiskApi, risk_consumer: EventConsumer, publisher: Publisher, kafka: Broker
) -> None:
    """What the referrals API accepts, this consumer handles: a resident with no date of
    birth and no address has no key, and is assessed on the referral (nothing dead-lettered,
    no profile made); so is a referral with the least, or the oddest, its payload allows."""
    named_only, oddest = str(uuid.uuid4()), str(uuid.uuid4())
    sent = [
        await publisher.send(
            CaseOpened(
                case_id=named_only,
                council=risk.council,
                origin="referral",
                resident_keys=[],
                opened_at=utc_now(),
            ),
            subject=named_only,
            source="/upstream/referrals",
        )
    ]
    for case_id, facts in [
        (named_only, {"needs": [Need.FOOD], "circumstances": [Circumstance.NO_FOOD_IN_HOME]}),
        (oddest, {"needs": [], "age_years": 2**70}),  # no need; an age no one has
    ]:
        referral = ReferralReceived(
            case_id=case_id,
            referral_id=str(uuid.uuid4()),
            council=risk.council,
            resident_keys=[],
            urgency=RiskLevel.HIGH,
            received_at=utc_now(),
            **facts,  # type: ignore[arg-type]
        )
        sent.append(await publisher.send(referral, subject=case_id, source="/upstream/referrals"))
    ids = [event.id for event in sent]

    async def applied() -> bool:
        # The inbox row is written in the handler's transaction: there only if it succeeded.
        return await risk.count("inbox", "event_id = ANY(:ids)", ids=ids) == len(ids)

    await wait_for(applied, timeout=30, what="every event applied")
    assessed = [
        a for a in await risk.events("risk.case.assessed") if a["case_id"] in {named_only, oddest}
    ]
    by_case = {a["case_id"]: a for a in assessed}
    assert len(assessed) == len(by_case) == 2  # each case assessed, once
    dead = await read_topic(
        kafka.bootstrap_servers, risk_consumer.spec.dead_letter_topic, expected=0
    )
    assert not [r for r in dead if dict(r.headers).get("dlq-event-id", b"").decode() in ids]
    # No profile, so no identifier's key at rest, for either resident.
    assert (
        await risk.count(
            "cases", "case_id IN (:a, :b) AND profile_id IS NULL", a=named_only, b=oddest
        )
        == 2
    )

    assessment = by_case[named_only]
    assert assessment["level"] == "crisis"
    assert [r["rule_id"] for r in assessment["reasons"]] == ["no-food-in-home", "no-resident-key"]
    assert "no date of birth, postcode or UPRN" in assessment["reasons"][1]["explanation"]
    assert (by_case[oddest]["level"], by_case[oddest]["score"]) == ("none", 0)

    why = await risk.client.get(
        f"/v1/cases/{named_only}/assessment", headers=risk.token("caseworker")
    )
    assert why.status_code == 200 and why.json()["level"] == "crisis"
    assert "no date of birth, postcode or UPRN" in why.json()["explanation"]


CANDIDATE = """
label: earlier-help
flag_level: medium
rules:
  - id: rent-arrears-4-weeks
    description: Rent arrears of four weeks or more
    explanation: "Rent arrears of {rent_arrears.weeks} weeks."
    when: has(signals.rent_arrears) && signals.rent_arrears.weeks >= 4
    level: high
    score: 40
    suggest: [housing]
  - id: council-tax-any-stage
    description: Council tax arrears at any stage
    explanation: Council tax arrears.
    when: has(signals.council_tax_arrears)
    level: medium
    score: 20
"""


async def test_rulesets_are_checked_dry_run_and_activated(risk: RiskApi) -> None:
    operator = risk.token("operator")
    current = (await risk.client.get("/v1/rulesets/current", headers=operator)).json()
    assert current["version"].startswith("default@") and current["active"] is True

    broken = CANDIDATE.replace("weeks >= 4", "wekks >= 4").replace(
        "id: council-tax-any-stage", "id: rent-arrears-4-weeks"
    )
    refused = await risk.client.post(
        "/v1/rulesets", content=broken, headers={**operator, "content-type": "application/yaml"}
    )
    assert refused.status_code == 422
    reasons = [e["reason"] for e in refused.json()["errors"]]
    assert "rule 'rent-arrears-4-weeks': signal 'rent_arrears' has no field 'wekks' " in (
        reasons[0][:74] + " "
    )
    assert "rule 'rent-arrears-4-weeks': duplicate id" in reasons
    unchanged = (await risk.client.get("/v1/rulesets/current", headers=operator)).json()
    assert unchanged["version"] == current["version"]

    rows = [
        csv_row(risk, "rent_arrears", given=name, weeks=weeks, amount="500")
        for name, weeks in (("Ade", "5"), ("Bea", "9"), ("Cal", "2"))
    ]
    rows.append(csv_row(risk, "council_tax_arrears", given="Dee", amount="300", stage="reminder"))
    await risk.upload(HEADER + "".join(rows))
    proposed = await risk.client.post(
        "/v1/rulesets", content=CANDIDATE, headers={**operator, "content-type": "application/yaml"}
    )
    assert proposed.status_code == 201 and proposed.json()["active"] is False
    version = proposed.json()["version"]

    report = (await risk.client.post(f"/v1/rulesets/{version}/dry-run", headers=operator)).json()
    assert report["residents"] == 4
    assert report["current"]["levels"] == {"none": 1, "low": 2, "medium": 0, "high": 1, "crisis": 0}
    assert report["candidate"]["levels"] == {
        "none": 1,
        "low": 0,
        "medium": 1,
        "high": 2,
        "crisis": 0,
    }
    assert report["residents_changing_level"] == 3
    driving = {
        d["rule_id"]: (d["current"], d["candidate"]) for d in report["rules_driving_the_difference"]
    }
    assert driving["rent-arrears-4-weeks"] == (0, 2) and driving["rent-arrears"] == (3, 0)

    caseworker = await risk.client.post(
        f"/v1/rulesets/{version}/activate", headers=risk.token("caseworker")
    )
    assert caseworker.status_code == 403
    activated = await risk.client.post(f"/v1/rulesets/{version}/activate", headers=operator)
    assert activated.json()["active"] is True
    assert (await risk.client.get("/v1/rulesets/current", headers=operator)).json()[
        "version"
    ] == version
    listed = (await risk.client.get("/v1/rulesets", headers=operator)).json()
    assert [r["active"] for r in listed] == [True, False]


async def test_the_default_ruleset_is_in_force_before_any_request_and_reads_write_nothing(
    risk: RiskApi,
) -> None:
    snapshot = "SELECT t::text AS row FROM rulesets t ORDER BY version"

    async def rulesets_as_stored() -> list[str]:
        async with risk.engine.connect() as connection:
            return list((await connection.scalars(text(snapshot))).all())

    before = await rulesets_as_stored()
    assert len(before) == 1 and '"upstream default"' in before[0]  # installed by migrate
    operator = risk.token("operator")
    for path in ("/v1/rulesets", "/v1/rulesets/current", "/v1/transparency"):
        assert (await risk.client.get(path, headers=operator)).status_code == 200
    assert await rulesets_as_stored() == before
    assert await risk.count("outbox") == 0


async def test_the_transparency_record_is_public_and_made_from_the_rules(risk: RiskApi) -> None:
    response = await risk.client.get("/v1/transparency")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/markdown")
    record = response.text
    assert "Algorithmic transparency record" in record and "## Tier 2: detail" in record
    for rule in ("eviction-notice", "rent-arrears-8-weeks", "three-signals-90-days"):
        assert f"`{rule}`" in record
    assert "A council caseworker decides what happens next" in record
    version = (
        await risk.client.get("/v1/rulesets/current", headers=risk.token("operator"))
    ).json()["version"]
    assert f"`{version}`" in record
    assert json.dumps(record)  # plain text, nothing binary


async def test_ndjson_files_are_read_line_by_line_too(risk: RiskApi) -> None:
    def line(**changes: Any) -> str:
        row = {
            "type": "job_loss",
            "council": risk.council,
            "source": "dwp-feed",
            "observed_on": RECENT,
            "resident": {"given_name": "Grace", "family_name": "Mensah", "postcode": "E8 1DY"},
        }
        row.update(changes)
        return json.dumps(row)

    body = "\n".join([line(), "{not json", "", line(type="bereavement"), line(council="Hackney")])
    report = await risk.upload(body + "\n", fmt="ndjson")
    assert (report["rows_read"], report["rows_stored"], report["rows_rejected"]) == (4, 2, 2)
    assert [(e["line"], e["field"]) for e in report["errors"]] == [(2, "row"), (5, "council")]
    assert report["errors"][0]["reason"].startswith("not JSON")
    assert (report["lines_read"], report["lines_skipped"]) == (5, 1)  # the blank line
    assert report["lines_joined"] == 0 and accounted(report)


def accounted(report: dict[str, Any]) -> bool:
    rows = report["rows_stored"] + report["rows_duplicate"] + report["rows_rejected"]
    return report["rows_read"] == rows and report["lines_read"] == (
        report["rows_read"] + report["lines_skipped"] + report["lines_joined"]
    )


async def test_a_broken_csv_line_is_refused_alone_and_every_line_is_accounted_for(
    risk: RiskApi,
) -> None:
    names = [f"Person{n}" for n in range(1, 10)]
    rows = [csv_row(risk, "job_loss", given=name) for name in names]  # two lines each
    # The fifth and ninth records lose the end of their address: one line each, a quote
    # left open. The fifth's first balances on line 11, but lines 10-11 are not one record.
    rows[4] = csv_row(risk, "job_loss", given=names[4], address='"Flat 3')  # line 10
    rows[8] = csv_row(risk, "job_loss", given=names[8], address='"Flat 3')  # line 17
    body = (HEADER + "".join(rows) + "\n").replace("\n", "\r\n")  # and a blank line

    report = await risk.upload(body)
    assert accounted(report)
    # header, blank line; seven records over two lines
    assert (report["lines_read"], report["lines_skipped"], report["lines_joined"]) == (18, 2, 7)
    assert (report["rows_read"], report["rows_stored"], report["rows_rejected"]) == (9, 7, 2)
    assert [(e["line"], e["field"]) for e in report["errors"]] == [(10, "row"), (17, "row")]
    assert all("quoted cell is not closed" in e["reason"] for e in report["errors"])
    # The good rows after the broken one are stored (three of them, in another batch).
    assert await risk.count("signals") == 7 and await risk.count("profiles") == 7

    again = await risk.upload(body)
    assert accounted(again)
    assert (again["rows_stored"], again["rows_duplicate"], again["rows_rejected"]) == (0, 7, 2)
    assert await risk.count("signals") == 7


async def test_a_csv_header_that_cannot_be_read_refuses_the_file(risk: RiskApi) -> None:
    body = HEADER.replace("weeks", "amount") + csv_row(risk, "job_loss")
    response = await risk.client.post(
        "/v1/signals/import",
        content=body.encode(),
        headers={**risk.token(), "content-type": "text/csv"},
    )
    assert response.status_code == 422, response.text
    assert "repeats amount" in response.text
    assert await risk.count("signals") == 0 and await risk.count("imports") == 0


def one_off_family_name() -> str:
    """A family name no other test uses (letters only, as a name would be)."""
    return "Okafor-" + uuid.uuid4().hex[:8].translate(str.maketrans("0123456789", "ghijklmnop"))
