"""Browser tests of the console: Debian's chromium driven by Playwright against the real stack.

The stack is the integration tests' (gunicorn with the gevent worker, a dramatiq worker,
RabbitMQ, PostgreSQL: ``tests/integration/conftest.py``). Playwright never downloads a browser
here: it drives the system's ``chromium`` (``make test`` installs it on Debian). Without it the
tests skip locally and fail under ``CI=true``. Each test may write screenshots of what it saw to
``var/screenshots/<test>-<name>.png`` (not committed) with the ``shot`` fixture.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.auth import create_key
from tests.integration import conftest as integration
from tests.processes import ROOT

playwright_api = pytest.importorskip("playwright.sync_api")

#: The integration tests' real stack and database fixtures, shared.
stack_env, stack, db = integration.stack_env, integration.stack, integration.db

#: Where screenshots go (gitignored with the rest of var/).
SCREENSHOTS = ROOT / "var" / "screenshots"
#: Milliseconds Playwright waits for an element or a navigation before failing.
TIMEOUT_MS = 15_000


def _chromium() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    return found or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = _chromium()
    if path is None:
        message = "chromium is not installed (Debian: apt-get install chromium; make test installs it)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI=true: {message}")
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def browser(chromium_path) -> Iterator[object]:
    """One headless chromium for the session (a fresh context per page keeps tests apart)."""
    manager = playwright_api.sync_playwright().start()
    args = ["--no-sandbox"] if os.geteuid() == 0 else []  # chromium refuses its sandbox as root
    launched = manager.chromium.launch(executable_path=chromium_path, headless=True, args=args)
    try:
        yield launched
    finally:
        launched.close()
        manager.stop()


@pytest.fixture(scope="module")
def console_keys(stack) -> dict[str, str]:
    """A key per role, each held by its own person (so one may approve what another's rule asked)."""
    return {
        "admin": stack.admin,
        "viewer": stack.viewer,
        "operator": create_key(role="operator", name="console operator"),
        "ingest": stack.ingest,
    }


@pytest.fixture
def sign_in(browser, stack, console_keys) -> Iterator[Callable[..., object]]:
    """``sign_in(role)``: a new browser page signed in to the console with that role's key."""
    contexts = []

    def open_as(role: str, *, viewport: dict[str, int] | None = None) -> object:
        context = browser.new_context(base_url=stack.base, viewport=viewport or {"width": 1280, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        page.goto("/console/login")
        page.get_by_label("API key").fill(console_keys[role])
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r".*/console/incidents"))
        return page

    yield open_as
    for context in contexts:
        context.close()


@pytest.fixture
def page(sign_in) -> object:
    """A page signed in as an operator."""
    return sign_in("operator")


@pytest.fixture
def shot(request) -> Callable[[object, str], Path]:
    """``shot(page, name)`` writes ``var/screenshots/<test>-<name>.png`` (full page) and returns its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    test = re.sub(r"[^\w.-]+", "_", request.node.name)

    def take(page: object, name: str) -> Path:
        path = SCREENSHOTS / f"{test}-{name}.png"
        page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
        return path

    return take
