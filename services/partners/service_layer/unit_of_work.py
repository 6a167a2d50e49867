"""The partners unit of work: the shared one, with the partners settings, a way to open a
webhook sender, a way to resolve a partner's host name and a way to open a mailer (each
replaceable in tests)."""

from __future__ import annotations

from dataclasses import dataclass

from services.partners.adapters.mail import OpenMailer, open_mailer
from services.partners.adapters.webhook_sender import (
    OpenWebhookSender,
    ResolveHost,
    http_webhook_sender,
    resolve_with_system,
)
from services.partners.settings import PartnersSettings
from shared.unit_of_work import UnitOfWork


@dataclass
class PartnersUnitOfWork(UnitOfWork[PartnersSettings]):
    open_webhook_sender: OpenWebhookSender = http_webhook_sender
    resolve_host: ResolveHost = resolve_with_system
    open_mailer: OpenMailer = open_mailer
