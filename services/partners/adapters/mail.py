"""Sending email: over SMTP (host, port, TLS, credentials, sender from the settings) or
through GOV.UK Notify (``notifications-python-client``, a setting away:
``UPSTREAM_MAIL_BACKEND=notify``). The unit of work carries how to open a mailer, so a test
can stand in for either.

A message is plain text; callers put no personal data in it (``service_layer/
notifications.py`` holds the rule)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import smtplib
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Protocol

from notifications_python_client.errors import APIError
from notifications_python_client.notifications import NotificationsAPIClient

from services.partners.settings import PartnersSettings


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str


class Mailer(Protocol):
    async def send(self, mail: Mail) -> None:
        """Send one message; raises ``OSError``, ``smtplib.SMTPException`` or
        ``MailNotSent`` on failure (each a failed attempt, retried with backoff)."""
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


# The client logs each refusal with Notify's message, which may quote what was sent; the
# delivery log and its warning carry the safe reason instead.
logging.getLogger("notifications_python_client").setLevel(logging.ERROR)


class MailNotSent(Exception):
    """The mail service refused the message or could not be reached. ``reason`` is safe to
    log and keep: a status and the service's error names, never the message or address."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _notify_error_names(error: APIError) -> str:
    """Notify's error classes (``BadRequestError``, ``RateLimitError``…), not its messages,
    which may quote what was sent."""
    try:
        errors = error.response.json().get("errors", [])  # type: ignore[union-attr]
        names = sorted({str(e["error"]) for e in errors if isinstance(e, dict) and "error" in e})
    except (AttributeError, TypeError, ValueError):
        return ""
    return f" ({', '.join(n for n in names if n.isidentifier())})" if names else ""


class NotifyMailer:
    """GOV.UK Notify (``notifications-python-client``): an email template whose
    personalisation is the subject and body. Each request is signed by the client with a JWT
    made from the API key's secret (HS256, ``iss`` the service id)."""

    def __init__(self, settings: PartnersSettings) -> None:
        if settings.notify_api_key is None or not settings.notify_template_id:
            raise RuntimeError("mail_backend=notify needs notify_api_key and notify_template_id")
        self.client = NotificationsAPIClient(
            settings.notify_api_key.get_secret_value(),
            base_url=settings.notify_base_url,
            timeout=10,
        )
        self.template_id = settings.notify_template_id

    def _send(self, mail: Mail) -> None:
        try:
            self.client.send_email_notification(
                email_address=mail.to,
                template_id=self.template_id,
                personalisation={"subject": mail.subject, "body": mail.body},
            )
        except APIError as exc:  # an answer other than 2xx, or no answer (503)
            raise MailNotSent(
                f"GOV.UK Notify answered {exc.status_code}{_notify_error_names(exc)}"
            ) from None

    async def send(self, mail: Mail) -> None:
        await asyncio.to_thread(self._send, mail)


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
