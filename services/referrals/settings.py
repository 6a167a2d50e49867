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
