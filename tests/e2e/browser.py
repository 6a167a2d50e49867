"""Pages in a real browser for the e2e tests: Playwright for Python driving Debian's
Chromium, every visit held to axe-core (no serious or critical violation), screenshots to
tests/artifacts/screens/ (git-ignored).

No browser here: the tests skip, saying so; under CI=true they fail instead."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

SCREENS = Path(__file__).resolve().parents[1] / "artifacts" / "screens"
CHROMIUM = os.environ.get("UPSTREAM_CHROMIUM", "/usr/bin/chromium")


def browser_or_skip() -> str:
    """Chromium's path, or the test skips (fails under CI=true) saying what is missing."""
    try:
        import axe_playwright_python  # noqa: F401
        import playwright  # noqa: F401
    except ImportError as exc:
        reason = f"the browser tests need playwright and axe-playwright-python ({exc})"
    else:
        if Path(CHROMIUM).exists() or shutil.which(CHROMIUM):
            return CHROMIUM
        reason = f"no Chromium at {CHROMIUM}: `apt-get install -y chromium` (as root)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and the browser tests cannot run: {reason}")
    pytest.skip(reason)


@contextlib.asynccontextmanager
async def launched_browser() -> AsyncIterator[Any]:
    executable = browser_or_skip()
    from playwright.async_api import async_playwright

    SCREENS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            await launched.close()


class Checked:
    """A browser page whose every visit is held to axe-core (no serious or critical
    violation) and may be photographed."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.checked: list[str] = []

    async def axe(self, label: str) -> None:
        from axe_playwright_python.async_playwright import Axe

        results = await Axe().run(self.page)
        bad = [
            f"{v['id']} ({v['impact']}): {v['help']}"
            for v in results.response["violations"]
            if v.get("impact") in ("serious", "critical")
        ]
        assert not bad, f"{label}: {bad}"
        self.checked.append(label)

    async def shot(self, name: str) -> None:
        await self.page.screenshot(path=str(SCREENS / f"{name}.png"), full_page=True)


async def new_page(browser: Any, viewport: dict[str, int] | None = None) -> Checked:
    context = await browser.new_context(
        bypass_csp=True,  # axe-core is injected into the page
        viewport=viewport or {"width": 1100, "height": 900},
    )
    return Checked(await context.new_page())
