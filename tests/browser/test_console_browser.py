"""The console in headless Chromium: rollback through the modal, feedback, what a user is not
offered, the analytics figures, accessibility (axe-core) and phone width, on one local host."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.keys import Keys

from devhost.tokens import print_tokens
from tests.browser.conftest import Console, auto_resolved, history, staff_headers, ticket
from tests.conftest import SECRET, bearer


def test_an_admin_rolls_back_an_auto_resolved_ticket_through_the_modal(
    console: Console, api: httpx.Client
) -> None:
    ticket_id = auto_resolved(api)
    console.sign_in("ada", "admin").go(f"#/tickets/{ticket_id}")
    assert console.attr("#ticket-status", "data-status") == "resolved"
    console.screenshot("ticket-detail-admin")
    button = console.find(f'button.rollback[data-action-id="{ticket_id}-2"]')

    # Keyboard: the modal opens with focus in the reason, Escape closes it and focus comes back.
    button.send_keys(Keys.ENTER)
    console.shown("#rollback-dialog")
    assert console.active_id() == "rollback-reason"
    console.driver.switch_to.active_element.send_keys(Keys.ESCAPE)
    console.wait(lambda d: not console.find("#rollback-dialog").is_displayed())
    assert console.driver.switch_to.active_element == button

    button.click()
    console.find("#rollback-confirm").click()  # no reason yet: refused in the modal, nothing sent
    assert console.find("#rollback-error").text == "Say why you roll it back."
    assert ticket(api, ticket_id)["status"] == "resolved"
    console.find("#rollback-reason").send_keys("Wrong fix for this user")
    console.screenshot("rollback-modal")
    console.find("#rollback-confirm").click()

    console.wait(lambda d: console.attr("#ticket-status", "data-status") == "new")
    assert not console.find("#rollback-dialog").is_displayed()
    assert not console.all("button.rollback")  # rolled back: nothing left to roll back
    assert "Wrong fix for this user" in console.find(f'li[data-action="{ticket_id}-2"]').text
    console.screenshot("ticket-rolled-back")
    now = ticket(api, ticket_id)
    assert now["status"] == "new" and now["resolution"]["outcome"] == "voided"
    [rollback, action] = history(api, ticket_id)[:2]
    assert rollback["action_type"] == "ROLLBACK" and action["rolled_back_by"] == "ada"
    assert action["rollback_reason"] == "Wrong fix for this user"


def test_a_refused_rollback_shows_the_servers_sentence_in_the_modal(
    console: Console, api: httpx.Client
) -> None:
    ticket_id = auto_resolved(api)
    console.sign_in("ada", "admin").go(f"#/tickets/{ticket_id}")
    # Another admin rolls it back while this page still offers the button.
    admin = bearer("root", "admin")
    assert api.post(f"/tickets/actions/{ticket_id}-2/rollback/", json={}, headers=admin).status_code == 200
    again = api.post(f"/tickets/actions/{ticket_id}-2/rollback/", json={}, headers=admin)
    assert again.status_code == 409 and again.json()["code"] == "already_rolled_back"

    console.find("button.rollback").click()
    console.find("#rollback-reason").send_keys("Too late")
    console.find("#rollback-confirm").click()
    error = console.wait(lambda d: console.text("#rollback-error"))
    assert error == again.json()["detail"]
    assert console.find("#rollback-dialog").is_displayed() and console.active_id() == "rollback-reason"
    console.screenshot("rollback-refused")


def test_after_a_ticket_changed_refusal_the_modal_offers_to_force(
    console: Console, api: httpx.Client
) -> None:
    ticket_id = auto_resolved(api)
    changed = api.post(
        f"/tickets/{ticket_id}/status/", json={"status": "escalated"}, headers=bearer("sam", "staff")
    )
    assert changed.status_code == 200
    console.sign_in("ada", "admin").go(f"#/tickets/{ticket_id}")
    console.find("button.rollback").click()
    assert not console.find("#rollback-force").is_displayed()  # offered only when it is needed
    console.find("#rollback-reason").send_keys("The fix was wrong")
    console.find("#rollback-confirm").click()
    error = console.wait(lambda d: console.text("#rollback-error"))
    assert error and ticket(api, ticket_id)["status"] == "escalated"  # refused: nothing changed
    console.shown("#rollback-force").click()
    console.screenshot("rollback-force")
    console.find("#rollback-confirm").click()
    console.wait(lambda d: console.attr("#ticket-status", "data-status") == "new")
    [entry, *_] = history(api, ticket_id)
    assert entry["action_type"] == "ROLLBACK" and entry["action_params"]["force"] is True


def test_a_user_submits_feedback_and_sees_the_thank_you(console: Console, api: httpx.Client) -> None:
    ticket_id = auto_resolved(api)
    console.sign_in("alice").go(f"#/tickets/{ticket_id}")
    console.screenshot("ticket-detail-user")
    console.find("#feedback-submit").click()  # no thumb chosen: it is required
    assert console.find("#feedback-error").text == "Choose thumbs up or thumbs down first."
    assert ticket(api, ticket_id)["resolution"]["resolution_confirmed"] is None

    console.find('input[name="resolution_confirmed"][value="yes"]').click()
    console.find('input[name="satisfaction_score"][value="4"]').click()
    console.find("#feedback-text").send_keys("Quick and easy, thanks")
    console.find("#feedback-submit").click()

    thanks = console.shown("#feedback-thanks")
    assert "Thank you for your feedback!" in thanks.text
    assert console.active_id() == "feedback-thanks"
    console.wait(lambda d: console.attr("#ticket-status", "data-status") == "closed")
    assert console.attr("#resolution-outcome", "data-outcome") == "confirmed"
    console.screenshot("feedback-thank-you")
    resolution = ticket(api, ticket_id)["resolution"]
    assert resolution["outcome"] == "confirmed" and resolution["satisfaction_score"] == 4
    assert resolution["feedback_text"] == "Quick and easy, thanks"


def test_a_user_sees_no_rollback_button(console: Console, api: httpx.Client) -> None:
    ticket_id = auto_resolved(api)
    console.sign_in("alice").go(f"#/tickets/{ticket_id}")
    entry = console.find(f'li[data-action="{ticket_id}-2"]')
    assert "AUTO RESOLVE" in entry.text  # the history is shown to its owner ...
    assert not console.all("button.rollback")  # ... without the admin's button
    # The same ticket as an admin: the button is there, so its absence above means something.
    console.sign_in("ada", "admin").go(f"#/tickets/{ticket_id}")
    assert len(console.all("button.rollback")) == 1


def settled(api: httpx.Client, query: dict[str, str]) -> None:
    """Wait until the analytics figures stop changing (the sweeper folds recorded events into the
    figures the reads see, every 2 s here): the page and the API then read the same figures."""

    def figures() -> list[Any]:
        read = [api.get(p, params=query, headers=staff_headers()).json() for p in ANALYTICS]
        return [{k: v for k, v in r.items() if k != "last_updated"} for r in read]

    seen, same = figures(), 0
    deadline = time.monotonic() + 60
    while same < 4:  # unchanged over 4 s: two folds found nothing new
        assert time.monotonic() < deadline, "the analytics figures never settled"
        time.sleep(1)
        now = figures()
        same = same + 1 if now == seen else 0
        seen = now


ANALYTICS = ("/tickets/resolution-analytics/", "/tickets/agent/analytics/")


def test_the_analytics_page_shows_the_figures_the_api_returns(console: Console, api: httpx.Client) -> None:
    auto_resolved(api)
    until = datetime.now(UTC).date()
    since = until - timedelta(days=13)
    settled(api, {"since": str(since), "until": str(until)})
    console.sign_in("sam", "staff").go(f"#/analytics?since={since}&until={until}")
    query = {"since": str(since), "until": str(until)}
    for section, path in (
        ("#resolution-figures", "/tickets/resolution-analytics/"),
        ("#agent-figures", "/tickets/agent/analytics/"),
    ):
        expected = api.get(path, params=query, headers=staff_headers()).json()
        shown = {
            e.get_attribute("data-figure"): e.get_attribute("data-value")
            for e in console.all(f"{section} [data-figure]")
        }
        assert shown, section
        for name, value in shown.items():
            assert value is not None
            assert json.loads(value) == expected[name], (path, name)
    week = console.attr("#week", "value")
    report = api.get("/tickets/reports/weekly/", params={"week": week}, headers=staff_headers()).json()
    rows = {
        r.get_attribute("data-criterion"): r.get_attribute("data-passed")
        for r in console.all("#criteria tr[data-criterion]")
    }
    assert rows == {c["name"]: json.dumps(c.get("passed")) for c in report["criteria"]}
    console.screenshot("analytics")


SCREENS = ["#/tickets", "#/notifications", "#/analytics", "#/controls", "#/health", "#/token"]


def test_every_screen_has_no_serious_accessibility_violation_and_fits_a_phone(
    console: Console, api: httpx.Client
) -> None:
    resolved = auto_resolved(api)
    rolled = auto_resolved(api)  # its owner gets the rollback's notice
    rollback = api.post(f"/tickets/actions/{rolled}-2/rollback/", json={}, headers=bearer("ada", "admin"))
    assert rollback.status_code == 200
    named = {f"#/tickets/{resolved}": "ticket", f"#/tickets/{rolled}": "ticket-rolled-back"}
    found: dict[str, Any] = {}
    for who, roles, screens in (
        ("ada", ("admin",), [*SCREENS, *named, "modal"]),
        ("alice", (), ["#/tickets", f"#/tickets/{resolved}", "#/notifications"]),
    ):
        console.sign_in(who, *roles)
        for name in screens:
            for width in (1280, 375):
                console.driver.set_window_size(width, 900)
                if name == "modal":
                    console.go(f"#/tickets/{resolved}")
                    console.find("button.rollback").click()
                    console.shown("#rollback-dialog")
                else:
                    console.go(name)
                label = f"{who}-{named.get(name, name.strip('#/'))}-{width}"
                if violations := console.axe():
                    found[label] = violations
                if width == 375 and (extra := console.overflow()):
                    found[f"{label} overflows"] = extra
                console.screenshot(label)
                if name == "modal":
                    console.driver.switch_to.active_element.send_keys(Keys.ESCAPE)
    assert not found, found


def test_the_console_asks_nothing_of_another_origin_and_breaks_no_csp(
    console: Console, api: httpx.Client
) -> None:
    console.sign_in("ada", "admin")
    for name in SCREENS:
        console.go(name)
    origin = console.driver.execute_script("return location.origin")
    requested = console.driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert requested and all(url.startswith(origin + "/") for url in requested), requested
    logs = console.driver.get_log("browser")
    assert not [e for e in logs if "Content Security Policy" in e["message"]], logs


def test_the_link_make_dev_prints_opens_the_console_signed_in(
    console: Console, host_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AUTH_JWT_SECRET", SECRET)
    capsys.readouterr()  # what the host printed when it started (its own links among it)
    print_tokens(host_url, console=True)
    printed = capsys.readouterr().out
    [link] = [line.split("admin: ", 1)[1] for line in printed.splitlines() if "admin: http" in line]
    assert link.startswith(f"{host_url}/console/#token=")  # in the fragment: never sent to a server
    console.driver.get(link)
    console.ready()
    assert console.find("#who").text == "dev-admin · admin"
    # The token left the address bar (and the history) for the tab's sessionStorage.
    assert console.driver.execute_script("return location.hash") == "#/tickets"
    stored = console.driver.execute_script("return sessionStorage.getItem('resolvemeq.console.token')")
    assert stored == link.split("#token=", 1)[1]
    assert console.find("#screen-title").text == "Tickets (all)"


def test_a_user_marks_a_notification_read(console: Console, api: httpx.Client) -> None:
    rolled = auto_resolved(api, "bob")
    admin = bearer("ada", "admin")
    assert api.post(f"/tickets/actions/{rolled}-2/rollback/", json={}, headers=admin).status_code == 200
    console.sign_in("bob").go("#/notifications")
    assert console.text("#notification-count") == "1 notification, 1 unread."
    console.find("button.mark-read").click()
    console.wait(lambda d: console.text("#notification-count") == "1 notification, 0 unread.")
    assert not console.all("button.mark-read")
    [notice] = api.get("/notifications/", headers=bearer("bob")).json()["results"]
    assert notice["read"] is True and notice["kind"] == "rollback"
    console.screenshot("notifications-read")
