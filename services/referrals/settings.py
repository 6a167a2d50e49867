from __future__ import annotations

from typing import ClassVar

from shared.settings import ServiceSettings


class ReferralsSettings(ServiceSettings):
    service_name: ClassVar[str] = "referrals"
    default_http_port: ClassVar[int] = 8001
