"""One stack at a time picks its ports and binds them. The end-to-end tests start whole
stacks in parallel workers, and a stack derives ports from the ones it picks (a worker's
metrics port, the dev SMTP server's): without this lock, one stack can pick a port that
another is about to bind."""

from __future__ import annotations

import contextlib
import fcntl
import tempfile
from collections.abc import Iterator
from pathlib import Path

LOCK = Path(tempfile.gettempdir()) / "upstream-e2e-stack-ports.lock"


@contextlib.contextmanager
def stack_ports_held() -> Iterator[None]:
    with LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
