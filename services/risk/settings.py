from __future__ import annotations

from typing import ClassVar

from shared.settings import ServiceSettings


class RiskSettings(ServiceSettings):
    service_name: ClassVar[str] = "risk"
    default_http_port: ClassVar[int] = 8002
