"""Sealing an event for the wire (shared/messaging/sealing.py), without a keystore."""

from __future__ import annotations

import copy
import os
import uuid

import pytest

from shared.messaging.sealing import SubjectKey, Unsealable, seal, unseal


def _envelope() -> dict:
    case = str(uuid.uuid4())
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/upstream/referrals",
        "type": "uk.upstream.referrals.case.ready_for_routing.v1",
        "subject": case,
        "partitionkey": case,
        "time": "2026-12-01T10:00:00Z",
        "datacontenttype": "application/json",
        "correlationid": "req-1",
        "data": {"case_id": case, "packet": {"first_name": "Amina", "phone": "07700 900123"}},
    }


KEY = SubjectKey(str(uuid.uuid4()), os.urandom(32))


def test_a_sealed_envelope_keeps_only_what_routes_it_and_opens_to_the_original() -> None:
    envelope = _envelope()
    sealed = seal(envelope, KEY)
    assert set(sealed) == {
        "specversion",
        "id",
        "source",
        "type",
        "time",
        "datacontenttype",
        "data",
        "partitionkey",
        "sealedwith",
    }  # fmt: skip  (the trace ids are sealed too: they could link a resident's story)
    assert list(sealed["data"]) == ["sealed"]
    wire = str(sealed)
    assert envelope["subject"] not in wire and "Amina" not in wire and "07700" not in wire
    assert unseal(sealed, KEY.data_key) == envelope
    assert seal(envelope, KEY)["data"] != sealed["data"]  # a fresh nonce each time


def test_another_key_a_changed_ciphertext_or_a_moved_ciphertext_does_not_open() -> None:
    sealed = seal(_envelope(), KEY)
    with pytest.raises(Unsealable):
        unseal(sealed, os.urandom(32))
    tampered = copy.deepcopy(sealed)
    blob = tampered["data"]["sealed"]
    tampered["data"]["sealed"] = blob[:-4] + ("AAAA" if blob[-4:] != "AAAA" else "BBBB")
    with pytest.raises(Unsealable):
        unseal(tampered, KEY.data_key)
    # The ciphertext is bound to every attribute in the clear: pasted into another event,
    # or under a changed time or classification, it does not open.
    for change in ({"id": str(uuid.uuid4())}, {"time": "2026-12-02T10:00:00Z"},
                   {"dataclassification": "operational"}):  # fmt: skip
        with pytest.raises(Unsealable):
            unseal({**sealed, **change}, KEY.data_key)
    with pytest.raises(Unsealable):
        unseal({**sealed, "data": {}}, KEY.data_key)
