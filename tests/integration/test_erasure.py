"""Erasure through the real broker (issue #14's third "Must show"): two residents seeded
through all three services as for subject access (a referral each, assessed by risk, routed
by partners and read by a partner; a note and a read by a caseworker; a signal each in
risk). Erasing one while a partner holds a live offer is refused with the reason; once the
case is withdrawn it is erased everywhere: every service confirms, and a scan of every row
of every table of the three databases and the keystore finds none of her identifiers, while
the other resident's are all still there. Every event on every topic (dead-letter topics
too), opened with every key the keystore still holds, names none of them either, while the
other resident's events still open and name her: the erasure forgot the data keys her events
were sealed under. Replaying every outbox, delivering her sealed records again, and sending
her old events again as new ones (as a topic still holding them would), brings nothing back."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.partners.handlers import EVENT_HANDLERS as PARTNERS_HANDLERS
from services.referrals.handlers import EVENT_HANDLERS as REFERRALS_HANDLERS
from services.risk.handlers import EVENT_HANDLERS as RISK_HANDLERS
from shared.db import create_engine, session_factory
from shared.events.catalogue import CATALOGUE, event_name
from shared.events.envelope import CloudEvent
from shared.events.payloads import CaseReadyForRouting, ResidentFlagged
from shared.identity import resident_keys, seal_identity
from shared.messaging.outbox import backlog, replay
from shared.messaging.sealing import Keystore, unseal
from shared.observability import EVENTS_CONSUMED
from shared.vocabulary import Need, RiskLevel
from tests.integration.messaging_helpers import every_record, wait_for
from tests.integration.test_subject_access import PEOPLE, World, _column, _scalar
from tests.integration.test_subject_access import world as world  # the same seeded stack
from tests.support.infrastructure import Broker, kafka_broker
from tests.support.services import publisher

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A broker of this module's own: the scan must not meet another module's residents,
    whose events a session-wide broker would still hold (and this stack's fresh consumer
    groups would read from the start)."""
    with kafka_broker(tmp_path_factory.mktemp("kafka-erasure")) as broker:
        yield broker


ERASURES = "/v1/erasure-requests"
HANDLERS: dict[str, Any] = {
    "referrals": REFERRALS_HANDLERS,
    "partners": PARTNERS_HANDLERS,
    "risk": RISK_HANDLERS,
}


def _engines(world: World) -> dict[str, AsyncEngine]:
    return {
        "referrals": world.referrals.engine,
        "partners": world.partners.engine,
        "risk": world.risk_engine,
    }


def _identifiers(world: World, who: str) -> list[str]:
    """Everything that identifies the resident: what was typed, and every id and key."""
    person: dict[str, Any] = PEOPLE[who]["resident"]  # type: ignore[assignment]
    seeded = world.seeded[who]
    keys = resident_keys(
        world.referrals.settings.resident_key_secret.get_secret_value(),
        council=world.council,
        given_name=person["given_name"],
        family_name=person["family_name"],
        date_of_birth=date.fromisoformat(person["date_of_birth"]),
        postcode=person["address"]["postcode"],
    )
    phone = person["contact"]["phone"]
    return [
        person["given_name"],
        person["family_name"],
        person["date_of_birth"],
        person["address"]["postcode"],
        person["address"]["line"],
        phone,
        phone.replace(" ", "")[-10:],
        PEOPLE[who]["circumstances_text"],
        *(seeded[k] for k in ("resident", "case", "referral", "offer", "signal", "profile")),
        *keys,
    ]


async def _found(world: World, identifiers: list[str]) -> set[tuple[str, str, str]]:
    """(service, table, identifier) for every identifier in any row of any table."""
    wanted = [i.lower() for i in identifiers]
    found: set[tuple[str, str, str]] = set()
    keystore = create_engine(world.referrals.settings.keystore_database_url())
    databases = {**_engines(world), "keystore": keystore}  # the data keys' database too
    for service, engine in databases.items():
        tables = await _column(
            engine,
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
        )
        async with engine.connect() as connection:
            for table in tables:
                rows = await connection.scalars(text(f'SELECT t::text FROM "{table}" t'))
                for row in rows:
                    found.update(
                        (service, table, identifiers[n])
                        for n, w in enumerate(wanted)
                        if w in row.lower()
                    )
    await keystore.dispose()
    return found


async def _opened(record: Any, keystore: Keystore) -> str:
    """A record as anyone holding the broker and the keystore could read it: its key, its
    headers and its value, opened if the keystore still holds its key."""
    texts = [
        (record.key or b"").decode(errors="replace"),
        *(value.decode(errors="replace") for _, value in record.headers or ()),
        record.value.decode(errors="replace"),
    ]
    envelope = json.loads(record.value)
    if envelope.get("sealedwith") and (key := await keystore.data_key(envelope["sealedwith"])):
        texts.append(json.dumps(unseal(envelope, key), ensure_ascii=False))
    return "\n".join(texts).lower()


async def _on_topics(world: World, identifiers: list[str]) -> tuple[set[str], list[Any]]:
    """The identifiers any record on any topic names, and the records that name any."""
    keystore = Keystore(world.referrals.settings.keystore_database_url())
    found: set[str] = set()
    naming: list[Any] = []
    try:
        for record in await every_record(world.broker.bootstrap_servers):
            readable = await _opened(record, keystore)
            named = {i for i in identifiers if i.lower() in readable}
            found |= named
            if named:
                naming.append(record)
    finally:
        await keystore.close()
    return found, naming


def _erased_deliveries() -> float:
    """How many deliveries every consumer in this process skipped: sealed under a
    forgotten key."""
    return sum(
        sample.value
        for metric in EVENTS_CONSUMED.collect()
        for sample in metric.samples
        if sample.name.endswith("_total") and sample.labels.get("outcome") == "erased"
    )


async def _withdrawn_everywhere(world: World, case_id: str, offer_id: str) -> None:
    async def settled() -> bool:
        partners = await _scalar(
            world.partners.engine, "SELECT status FROM offers WHERE id = :o", o=offer_id
        )
        mirrored = await _scalar(
            world.referrals.engine, "SELECT status FROM offers WHERE id = :o", o=offer_id
        )
        return partners == mirrored == "withdrawn"

    await wait_for(settled, timeout=60, what="the offer withdrawn in partners and referrals")


async def _outboxes_published(world: World) -> None:
    async def empty() -> bool:
        for engine in _engines(world).values():
            async with session_factory(engine)() as session:
                if await backlog(session):
                    return False
        return True

    await wait_for(empty, timeout=60, what="every outbox published")


async def test_erasure_leaves_no_identifier_anywhere_and_replays_bring_nothing_back(
    world: World,
) -> None:
    amina = world.seeded["amina"]
    ig = world.ig()

    # Her case is open, with a live offer: erasure does not apply yet (Art. 17(3)).
    refused = await world.referrals.client.post(
        ERASURES, json={"resident_id": amina["resident"], "ground": "objection"}, headers=ig
    )
    assert refused.status_code == 409, refused.text
    assert "Article 17(3)" in refused.json()["detail"]  # a live offer, or a crisis
    assert await _scalar(
        world.referrals.engine,
        "SELECT count(*) FROM audit_log WHERE operation = 'erasure_refused'",
    )

    # Her old events, as the topics still hold them, to send again after the erasure.
    old = [
        CloudEvent.model_validate(row)
        for row in await _column(
            world.referrals.engine,
            "SELECT envelope FROM outbox WHERE message_key = :c ORDER BY id",
            c=amina["case"],
        )
    ]
    assert CATALOGUE.for_payload(CaseReadyForRouting).name in {e.type for e in old}

    withdrawn = await world.referrals.client.post(
        f"/v1/cases/{amina['case']}/withdraw",
        json={"reason": "the resident asked to be forgotten"},
        headers=world.referrals.token(),
    )
    assert withdrawn.status_code == 200, withdrawn.text
    await _withdrawn_everywhere(world, amina["case"], amina["offer"])
    await _outboxes_published(world)
    assert await _found(world, _identifiers(world, "amina"))  # there before
    # Her events on the topics: sealed (no identifier of hers in the clear), opened with the
    # keystore's keys they name her. Kept, to be delivered again after the erasure.
    on_topics, her_records = await _on_topics(world, _identifiers(world, "amina"))
    assert {world.seeded["amina"]["case"], PEOPLE["amina"]["resident"]["given_name"]} <= on_topics
    clear = [r for r in her_records if not json.loads(r.value).get("sealedwith")]
    assert clear == [], [r.topic for r in clear]  # every event of hers was sealed
    her_records = [r for r in her_records if not r.topic.endswith(".dlq")]

    before_erasure = datetime.now(UTC)
    erased = await world.referrals.client.post(
        ERASURES, json={"resident_id": amina["resident"], "ground": "objection"}, headers=ig
    )
    assert erased.status_code == 202, erased.text
    request_id = erased.json()["id"]
    assert erased.json()["confirmed"] == ["referrals"]
    assert erased.json()["erased"]["residents"] == 1 and erased.json()["erased"]["cases"] == 1

    async def confirmed() -> dict[str, Any] | None:
        status = await world.referrals.client.get(f"{ERASURES}/{request_id}", headers=ig)
        assert status.status_code == 200, status.text
        return status.json() if not status.json()["pending"] else None

    done = await wait_for(confirmed, timeout=90, what="every service to confirm")
    assert done["confirmed"] == ["referrals", "partners", "risk"]
    assert done["completed_at"] is not None
    await _outboxes_published(world)

    assert await _found(world, _identifiers(world, "amina")) == set()
    # The scan sees what it should: the other resident's every identifier is still there.
    kept = {identifier for _, _, identifier in await _found(world, _identifiers(world, "zainab"))}
    assert kept == set(_identifiers(world, "zainab"))
    # Every event on every topic: none opens to name her; the other resident's still do.
    assert (await _on_topics(world, _identifiers(world, "amina")))[0] == set()
    others, _ = await _on_topics(world, _identifiers(world, "zainab"))
    assert {world.seeded["zainab"]["case"], PEOPLE["zainab"]["resident"]["given_name"]} <= others
    # The reads are kept, whose they were is not.
    assert await _scalar(
        world.partners.engine, "SELECT count(*) FROM audit_log WHERE operation = 'get_offer'"
    )

    # Replay every outbox, deliver her sealed records again (as a consumer group reset to
    # the beginning would get them), and send her old events again (as a topic that still
    # held them in the clear would deliver them to a new consumer: written when they were,
    # under new ids, so no inbox knows them): nothing comes back.
    for engine in _engines(world).values():
        async with session_factory(engine)() as session, session.begin():
            await replay(session)
    skipped_before = _erased_deliveries()
    async with publisher(world.broker.bootstrap_servers) as sender:
        for record in her_records:
            await sender.producer.send_and_wait(
                record.topic, value=record.value, key=record.key, headers=list(record.headers)
            )
    takers = {
        service: {event_name(p) for p, _ in handlers} for service, handlers in HANDLERS.items()
    }
    expected = sum(
        json.loads(r.value)["type"] in types for r in her_records for types in takers.values()
    )

    async def skipped() -> bool:
        return _erased_deliveries() - skipped_before >= expected

    await wait_for(skipped, timeout=90, what="her sealed records skipped by every consumer")
    async with publisher(world.broker.bootstrap_servers) as sender:
        again = [event.model_copy(update={"id": str(uuid.uuid4())}) for event in old]
        # A flag of her (a risk feed's, written before the erasure) would open an outreach
        # case. (One written after it is about her referred again: handled as anyone's.)
        key = _identifiers(world, "amina")[-1]
        again.append(
            CATALOGUE.envelope(
                _flag(world, key), source="/upstream/risk", subject=key, time=before_erasure
            )
        )
        for event in again:
            await sender.resend(event)

    async def applied() -> bool:
        """Every resent event has reached every consumer that takes it (its inbox row)."""
        for service, engine in _engines(world).items():
            takes = {event_name(p) for p, _ in HANDLERS[service]}
            ids = [e.id for e in again if e.type in takes]
            count = await _scalar(
                engine, "SELECT count(*) FROM inbox WHERE event_id = ANY(:ids)", ids=ids
            )
            if count < len(ids):
                return False
        return True

    await wait_for(applied, timeout=90, what="the old events applied again")
    await _outboxes_published(world)
    assert await _found(world, _identifiers(world, "amina")) == set()
    # A replayed erasure request is harmless: still complete, nothing re-created.
    status = await world.referrals.client.get(f"{ERASURES}/{request_id}", headers=ig)
    assert status.json()["completed_at"] == done["completed_at"]


def _flag(world: World, key: str) -> ResidentFlagged:
    """A flag for one of her keys, as the risk service sends it (her identity sealed)."""
    person: dict[str, Any] = PEOPLE["amina"]["resident"]  # type: ignore[assignment]
    return ResidentFlagged(
        resident_key=key,
        council=world.council,
        level=RiskLevel.HIGH,
        score=80,
        suggested_needs=[Need.FOOD],
        ruleset_version="test",
        sealed_identity=seal_identity(
            world.referrals.settings.resident_key_secret.get_secret_value(),
            {
                "given_name": person["given_name"],
                "family_name": person["family_name"],
                "date_of_birth": person["date_of_birth"],
                "postcode": person["address"]["postcode"],
                "phone": person["contact"]["phone"],
            },
        ),
        flagged_at=datetime.now(UTC),
    )
