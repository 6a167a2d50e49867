"""A real SMTP server for development and tests (``aiosmtpd``): every message it receives
is kept as a ``.eml`` file in a folder (``.upstream/mail/`` in the dev stack), newest last.
Nothing is relayed anywhere."""

from __future__ import annotations

import email
import email.policy
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class _KeepInFolder:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        name = f"{stamp}-{time.monotonic_ns()}.eml"
        (self.folder / name).write_bytes(envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"


class MailFolderServer:
    """Start, read what arrived, stop."""

    def __init__(self, folder: Path, *, host: str = "127.0.0.1", port: int = 8025) -> None:
        self.folder, self.host, self.port = folder, host, port
        self._controller = Controller(_KeepInFolder(folder), hostname=host, port=port)

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    def messages(self) -> list[EmailMessage]:
        """Every message kept so far, oldest first."""
        found = []
        for path in sorted(self.folder.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns):
            parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            assert isinstance(parsed, EmailMessage)
            found.append(parsed)
        return found
