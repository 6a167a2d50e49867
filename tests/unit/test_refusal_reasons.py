"""What a refusal says of a field's error: pydantic's message, never the value refused, however
a validator's own message quotes it."""

from __future__ import annotations

import pytest

from shared.input_policy import validation_reason


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("Amina Okafor", "Value error, 'Amina Okafor' is not on the round"),
        (" amina okafor ", "Value error, 'AMINA OKAFOR' is not on the round"),
        ("Amina\tOkafor", "Value error, 'Amina\\tOkafor' is not on the round"),  # as repr writes it
        ("Straße", "Value error, 'STRASSE' is not on the round"),
        ("Straße", "Value error, 'strasse' is not on the round"),
    ],
)
def test_a_validators_message_never_repeats_the_value(given: str, message: str) -> None:
    reason = validation_reason({"type": "value_error", "msg": message, "input": given})
    assert reason == "Value error, '(the value given)' is not on the round"


def test_pydantics_own_messages_are_left_as_they_are() -> None:
    """They never quote the input: a value that is one of their words changes nothing."""
    error = {
        "type": "string_pattern_mismatch",
        "msg": "String should match pattern '^[0-9]+$'",
        "input": "match",
    }
    assert validation_reason(error) == "String should match pattern '^[0-9]+$'"
