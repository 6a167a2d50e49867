"""CloudEvents 1.0 envelope, structured JSON mode, as carried in a Kafka record value.

Extensions used by Upstream (all strings, lower-case names as the spec requires):
``correlationid`` and ``causationid`` (the trace), ``partitionkey`` (the Kafka key: the
aggregate id), ``dataclassification`` (how sensitive ``data`` is), and on the wire
``sealedwith`` (the id of the data key ``data`` is sealed under: shared/messaging/sealing.py).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from shared.input_policy import validation_reason

STRUCTURED_CONTENT_TYPE = "application/cloudevents+json; charset=UTF-8"


class DataClassification(StrEnum):
    """How sensitive an event's payload is (UK GDPR terms)."""

    OPERATIONAL = "operational"  # no personal data
    PSEUDONYMOUS = "pseudonymous"  # keyed identifiers only
    PERSONAL = "personal"  # identifies a resident
    SPECIAL_CATEGORY = "special-category"  # Article 9: health, disability and the like


class EnvelopeError(ValueError):
    """A Kafka record that is not a CloudEvent we can read."""


class CloudEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(min_length=1, max_length=128)
    source: str = Field(min_length=1, max_length=512)
    type: str = Field(min_length=1, max_length=256, pattern=r"^[a-z0-9]+(\.[a-z0-9_]+)*\.v[0-9]+$")
    subject: str | None = Field(default=None, max_length=256)
    time: AwareDatetime  # RFC 3339: with its offset (a naive time would not compare)
    datacontenttype: Literal["application/json"] = "application/json"
    data: dict[str, Any]
    correlationid: str | None = Field(default=None, max_length=128)
    causationid: str | None = Field(default=None, max_length=128)
    partitionkey: str | None = Field(default=None, max_length=256)
    dataclassification: DataClassification | None = None
    sealedwith: str | None = Field(default=None, max_length=64)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    def to_bytes(self) -> bytes:
        return encode(self.to_json())

    @classmethod
    def from_bytes(cls, value: bytes | None) -> CloudEvent:
        if not value:
            raise EnvelopeError("empty record value: expected a CloudEvent in structured JSON mode")
        try:
            raw = json.loads(value)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise EnvelopeError(f"record value is not JSON: {exc}") from exc
        if not isinstance(raw, dict):
            raise EnvelopeError("record value is JSON but not an object")
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            fields = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'event'}: {validation_reason(err)}"
                for err in exc.errors()
            )
            raise EnvelopeError(f"not a valid CloudEvent: {fields}") from exc


def encode(document: dict[str, Any]) -> bytes:
    """A CloudEvent's JSON form (``to_json``, or as stored in an outbox row) as record bytes."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def utc_now() -> datetime:
    return datetime.now(UTC)
