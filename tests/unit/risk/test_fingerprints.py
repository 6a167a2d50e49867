"""One fingerprint of a signal (``domain/signals.py``): the import stores signals by it, and
an undone merge's split tells the restored record's signals by it, from what the database
gives back."""

from __future__ import annotations

import hashlib
import json
from datetime import date, timedelta

from services.risk.domain.feeds import Row, check_parsed
from services.risk.domain.rules import jsonable_attributes
from services.risk.domain.signals import attributes_json, fingerprint, stored_fingerprint
from services.risk.service_layer import signals
from services.risk.service_layer.reading import Keying

OBSERVED = date.today() - timedelta(days=3)


def _row() -> Row:
    raw = {
        "type": "rent_arrears",
        "council": "E09000025",
        "source": "newham-rént",  # not ASCII: json.dumps escapes it, and so must the formula
        "observed_on": OBSERVED.isoformat(),
        "resident": {"given_name": "Amina", "family_name": "Okafor", "postcode": "E15 4HT"},
        "attributes": {"weeks": 3, "amount": "420.50"},
    }
    row = check_parsed(1, raw)
    assert isinstance(row, Row), row
    return row


def test_the_fingerprint_is_the_hash_of_the_fact_as_json() -> None:
    attributes = {"weeks": 3, "amount": 420.5, "note": '£ "quoted"'}
    expected = hashlib.sha256(
        json.dumps(
            ["key-1", "rent_arrears", "newham-rént", OBSERVED.isoformat(), attributes],
            sort_keys=True,
        ).encode()
    ).hexdigest()
    found = fingerprint(
        "key-1", "rent_arrears", "newham-rént", OBSERVED, attributes_json(attributes)
    )
    assert found == expected


def test_a_stored_signal_is_fingerprinted_as_the_import_fingerprinted_it() -> None:
    row = _row()
    ready = signals._ready(Keying("a-secret", tombstones_before_council_keys=False), row)
    assert ready.fingerprint == fingerprint(
        ready.keys[0], "rent_arrears", "newham-rént", OBSERVED, ready.attributes
    )
    # What the split reads back: the attributes decoded from JSONB (keys in any order).
    stored = {
        "type": "rent_arrears",
        "source": "newham-rént",
        "observed_on": OBSERVED,
        "attributes": dict(reversed(json.loads(ready.attributes).items())),
    }
    assert stored["attributes"] == jsonable_attributes(row.attributes)
    assert stored_fingerprint(ready.keys[0], stored) == ready.fingerprint
    assert stored_fingerprint(ready.keys[-1] + "x", stored) != ready.fingerprint
