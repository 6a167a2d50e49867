"""Sending email: over SMTP (host, port, TLS, credentials, sender from the settings) or
through GOV.UK Notify (``notifications-python-client``, installed separately, a setting
away). The unit of work carries how to open a mailer, so a test can stand in for either.

A message is plain text; callers put no personal data in it (``service_layer/
notifications.py`` holds the rule)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import smtplib
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any, Protocol

from services.partners.settings import PartnersSettings


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str


class Mailer(Protocol):
    async def send(self, mail: Mail) -> None:
        """Send one message; raises ``OSError`` or ``smtplib.SMTPException`` on failure."""
        ...


OpenMailer = Callable[[PartnersSettings], AbstractAsyncContextManager[Mailer]]


def message_of(mail: Mail, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Message-ID"] = make_msgid(domain="upstream.invalid")
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(mail.body)
    return message


class SmtpMailer:
    """One SMTP connection for a sweep (smtplib in a thread: a sweep sends a handful)."""

    def __init__(self, settings: PartnersSettings) -> None:
        self.settings = settings
        self._client: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        context = ssl.create_default_context()
        client: smtplib.SMTP
        if s.smtp_tls == "tls":
            client = smtplib.SMTP_SSL(s.smtp_host, s.smtp_port, timeout=10, context=context)
        else:
            client = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=10)
            if s.smtp_tls == "starttls":
                client.starttls(context=context)
        if s.smtp_username:
            password = s.smtp_password.get_secret_value() if s.smtp_password else ""
            client.login(s.smtp_username, password)
        return client

    def _send(self, mail: Mail) -> None:
        if self._client is None:
            self._client = self._connect()
        try:
            self._client.send_message(message_of(mail, self.settings.mail_sender))
        except (smtplib.SMTPServerDisconnected, OSError):
            # A dropped connection: the next email of the sweep connects afresh rather than
            # failing on the dead one (this one is retried like any failed attempt).
            self._client = None
            raise

    async def send(self, mail: Mail) -> None:
        await asyncio.to_thread(self._send, mail)

    def _close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self._client.quit()
            self._client = None

    async def close(self) -> None:
        await asyncio.to_thread(self._close)


class NotifyMailer:
    """GOV.UK Notify: an email template whose personalisation is the subject and body."""

    def __init__(self, settings: PartnersSettings) -> None:
        if settings.notify_api_key is None or settings.notify_template_id is None:
            raise RuntimeError("mail_backend=notify needs notify_api_key and notify_template_id")
        module: Any = importlib.import_module("notifications_python_client.notifications")
        self.client = module.NotificationsAPIClient(settings.notify_api_key.get_secret_value())
        self.template_id = settings.notify_template_id

    async def send(self, mail: Mail) -> None:
        await asyncio.to_thread(
            self.client.send_email_notification,
            email_address=mail.to,
            template_id=self.template_id,
            personalisation={"subject": mail.subject, "body": mail.body},
        )


@asynccontextmanager
async def open_mailer(settings: PartnersSettings) -> AsyncIterator[Mailer]:
    if settings.mail_backend == "notify":
        yield NotifyMailer(settings)
        return
    mailer = SmtpMailer(settings)
    try:
        yield mailer
    finally:
        await mailer.close()
