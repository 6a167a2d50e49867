"""The signal import's tombstone hashes are exactly ``shared.erasure.tombstone``'s."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.risk.service_layer.signals import tombstone_hasher
from shared.erasure import tombstone


@given(secret=st.text(min_size=1, max_size=200), identifier=st.text(max_size=100))
def test_the_same_hash_as_shared_erasure(secret: str, identifier: str) -> None:
    assert tombstone_hasher(secret)(identifier) == tombstone(secret, identifier)


def test_a_long_secret_is_hashed_first_as_hmac_does() -> None:
    secret = "s" * 100  # longer than SHA-256's block
    assert tombstone_hasher(secret)("a" * 64) == tombstone(secret, "a" * 64)
