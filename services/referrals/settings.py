from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr

from shared.settings import DEVELOPMENT_RESIDENT_KEY_SECRET, ServiceSettings


class ReferralsSettings(ServiceSettings):
    service_name: ClassVar[str] = "referrals"
    default_http_port: ClassVar[int] = 8001

    resident_key_secret: SecretStr = Field(
        default=SecretStr(DEVELOPMENT_RESIDENT_KEY_SECRET),
        description="Shared with the risk service only: both derive the same resident keys",
    )

    councils: list[str] = Field(
        default=["E09000025", "E09000012"],
        description="GSS codes of the councils this deployment serves (Newham and Hackney)",
    )
    # Retention (docs/information-governance.md, Retention): swept hourly, in batches.
    retention_closed_case_years: int = Field(
        default=6,
        ge=1,
        description="a resident whose every case has been closed or withdrawn this long is "
        "erased everywhere, as an erasure on the ground no_longer_necessary (Article 5(1)(e))",
    )
    idempotency_key_days: int = Field(
        default=7,
        ge=1,
        description="a referral's stored answer to its Idempotency-Key is kept this long (a "
        "retry within it gets the first answer), then deleted",
    )
    retention_subject_access_days: int = Field(
        default=365,
        ge=30,
        description="a subject access request and its export are deleted this long after it "
        "completed (or was made, if never completed)",
    )
