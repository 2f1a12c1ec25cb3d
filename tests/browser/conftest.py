"""Browser tests of the console: headless Chromium (Debian's `chromium` and `chromium-driver`)
driven by Selenium, against the real function_app on the local host and one Azurite per module.

`make test` installs Chromium when it is missing (see the Makefile). Without it these tests FAIL,
saying what to install: a machine that cannot run them must say so, never pass by skipping. To
leave them out on purpose (a laptop without Debian's packages), set BROWSER_TESTS=0: they are then
skipped with that reason.

Each test saves screenshots of the screens it saw under tests/browser/screenshots/ (gitignored).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from devhost import azurite
from tests.conftest import token
from tests.e2e.conftest import E2E_HOST_JSON, Stack, create_ticket, wait_until

ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(__file__).resolve().parent / "screenshots"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
RESET = {
    "issue_type": "Password reset",
    "description": "I forgot my password and need to reset it.",
    "category": "account",
}
WAIT = 30  # seconds: a bound on waiting for the page or the agent, never a timing assertion


HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("BROWSER_TESTS") != "0":
        return
    skip = pytest.mark.skip(reason="BROWSER_TESTS=0: the console's browser tests are skipped on purpose")
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(skip)


def chromium_paths() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        pytest.fail(
            "Chromium and its driver are needed for the console's browser tests and were not found "
            f"(chromium: {browser}, chromedriver: {driver}). Install Debian's packages: "
            "`apt-get install chromium chromium-driver` (make test does it as root or with sudo), "
            "or set BROWSER_TESTS=0 to skip these tests on purpose.",
            pytrace=False,
        )
    return browser, driver


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    host_json = tmp_path_factory.mktemp("browser") / "host.json"
    host_json.write_text(json.dumps(E2E_HOST_JSON))
    s = Stack(azurite.start(), host_json)
    try:
        yield s
    finally:
        for process in s.hosts:
            process.stop()
        s.emulator.stop()


@pytest.fixture(scope="module")
def host_url(stack: Stack) -> str:
    # The sweeper folds the analytics every 2 s here (every minute by default), so the figures
    # settle quickly after a scenario.
    host = stack.host(FOLLOWUP_DELAY_SECONDS=3600, FOLLOWUP_SWEEP_SCHEDULE="*/2 * * * * *")
    return host.url.rstrip("/")  # e.g. http://127.0.0.1:PORT/api


@pytest.fixture(scope="module")
def api(host_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=host_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def driver() -> Iterator[webdriver.Chrome]:
    browser, chromedriver = chromium_paths()
    options = Options()
    options.binary_location = browser
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,900",
        "--lang=en-US",
        # No background traffic: on a closed network Chromium's own connections (updates, sync,
        # QUIC probes) are refused by the dozen at every start, slowing it for nothing.
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--no-first-run",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    chrome = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    try:
        yield chrome
    finally:
        chrome.quit()


class Console:
    """The console in the browser, as one person (their token) uses it."""

    def __init__(self, driver: webdriver.Chrome, host_url: str) -> None:
        self.driver, self.url = driver, f"{host_url}/console/"

    def sign_in(self, sub: str, *roles: str) -> Console:
        self.driver.set_window_size(1280, 900)
        self.driver.get(self.url + "#token=" + token(sub, *roles))
        self.ready()
        return self

    def go(self, fragment: str) -> Console:
        self.driver.get(self.url + fragment)
        self.ready()
        return self

    def ready(self) -> None:
        """The screen for the current fragment finished rendering (console.js marks it)."""
        self.wait(
            lambda d: (
                d.find_element(By.ID, "main").get_attribute("data-ready")
                == d.execute_script("return location.hash")
            )
        )

    def wait(self, condition: Callable[[Any], Any], timeout: float = WAIT) -> Any:
        return WebDriverWait(self.driver, timeout).until(condition)

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def shown(self, css: str) -> WebElement:
        return self.wait(
            lambda d: next((e for e in d.find_elements(By.CSS_SELECTOR, css) if e.is_displayed()), None)
        )

    def attr(self, css: str, name: str) -> str | None:
        """An attribute read in one script call: no stale element while the screen re-renders."""
        value = self.driver.execute_script(
            "const e = document.querySelector(arguments[0]); return e && e.getAttribute(arguments[1]);",
            css,
            name,
        )
        return None if value is None else str(value)

    def text(self, css: str) -> str | None:
        """An element's text, read in one script call (see `attr`)."""
        value = self.driver.execute_script(
            "const e = document.querySelector(arguments[0]); return e && e.textContent;", css
        )
        return None if value is None else str(value)

    def active_id(self) -> str:
        return str(self.driver.switch_to.active_element.get_attribute("id"))

    def screenshot(self, name: str) -> Path:
        """The whole page (the window made as tall as the page for the shot, then put back)."""
        SHOTS.mkdir(exist_ok=True)
        path = SHOTS / f"{name}.png"
        size = self.driver.get_window_size()
        height = int(self.driver.execute_script("return document.documentElement.scrollHeight"))
        self.driver.set_window_size(size["width"], min(max(height, size["height"]), 8000))
        try:
            self.driver.save_screenshot(str(path))
        finally:
            self.driver.set_window_size(size["width"], size["height"])
        return path

    def axe(self) -> list[dict[str, Any]]:
        """axe-core's serious and critical violations on the page as it is now."""
        if not self.driver.execute_script("return typeof window.axe === 'object'"):
            self.driver.execute_script(AXE.read_text(encoding="utf-8"))
        result = self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document, {resultTypes: ['violations']})"
            ".then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
            " nodes: v.nodes.map(n => n.target.join(' '))}))))"
            ".catch(e => done({error: String(e)}));"
        )
        assert isinstance(result, list), result
        return [v for v in result if v["impact"] in ("serious", "critical")]

    def overflow(self) -> int:
        """How many CSS pixels the page is wider than the window (0: it fits)."""
        return int(
            self.driver.execute_script(
                "return Math.max(0, document.documentElement.scrollWidth - window.innerWidth)"
            )
        )


@pytest.fixture
def console(driver: webdriver.Chrome, host_url: str) -> Console:
    driver.get("about:blank")
    return Console(driver, host_url)


def staff_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {token('sam', 'staff')}"}


def ticket(api: httpx.Client, ticket_id: int) -> dict[str, Any]:
    response = api.get(f"/tickets/{ticket_id}/", headers=staff_headers())
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def history(api: httpx.Client, ticket_id: int) -> list[dict[str, Any]]:
    response = api.get(f"/tickets/{ticket_id}/action-history/", headers=staff_headers())
    assert response.status_code == 200, response.text
    return response.json()["action_history"]  # type: ignore[no-any-return]


def auto_resolved(api: httpx.Client, user: str = "alice") -> int:
    """A ticket of `user` the agent auto-resolved through the queue."""
    created = create_ticket(api, user, **RESET)
    owner = {"Authorization": f"Bearer {token(user)}"}
    assert api.post(f"/tickets/{created['id']}/process/", headers=owner).status_code == 202
    wait_until(lambda: ticket(api, created["id"])["status"] == "resolved", timeout=WAIT)
    return int(created["id"])
