"""Agent controls in the console: an admin pauses the agent, and a user's new ticket is then
deferred to people. A module of its own: pausing the agent would change what the other tests see."""

from __future__ import annotations

import httpx
from selenium.webdriver.common.keys import Keys

from tests.browser.conftest import Console, history, ticket
from tests.conftest import bearer


def test_an_admin_pauses_the_agent_and_a_new_ticket_is_deferred(console: Console, api: httpx.Client) -> None:
    admin = console.sign_in("ada", "admin").go("#/controls")
    assert admin.attr("#agent-state", "data-state") == "active"
    admin.find("#pause-agent").click()  # no reason: refused here, nothing sent
    assert "reason is required" in admin.find("#controls-error").text
    assert admin.active_id() == "controls-reason"
    assert api.get("/agent/controls/", headers=bearer("ada", "admin")).json()["enabled"] is True

    admin.find("#controls-reason").send_keys("Incident 4711: wrong VPN answers")
    admin.find("#pause-agent").click()
    admin.wait(lambda d: admin.attr("#agent-state", "data-state") == "paused")
    admin.screenshot("controls-paused")
    controls = api.get("/agent/controls/", headers=bearer("ada", "admin")).json()
    assert controls["enabled"] is False and controls["updated_by"] == "ada"
    assert controls["reason"] == "Incident 4711: wrong VPN answers"

    # A user files a ticket in the console and asks the agent: it defers to people.
    user = console.sign_in("alice").go("#/tickets")
    user.find("details.card > summary").click()
    user.find("#new-issue").send_keys("Password reset")
    user.find("#new-description").send_keys("I forgot my password and need to reset it.")
    user.find("#new-ticket-submit").click()
    user.wait(lambda d: d.execute_script("return /^#\\/tickets\\/\\d+$/.test(location.hash)"))
    user.ready()
    ticket_id = int(user.driver.execute_script("return location.hash.split('/')[2]"))
    assert user.attr("#ticket-status", "data-status") == "new"
    user.find("#process-button").click()
    user.wait(lambda d: user.attr("#ticket-status", "data-status") == "open")
    deferral = user.find(f'li[data-action="{ticket_id}-2"]')
    assert "DEFER TO HUMAN" in deferral.text and "agent disabled" in deferral.text
    user.screenshot("ticket-deferred")
    [entry, *_] = history(api, ticket_id)
    assert entry["action_type"] == "DEFER_TO_HUMAN" and entry["action_params"]["reason"] == "agent_disabled"
    assert ticket(api, ticket_id)["status"] == "open"

    # Resumed, with the rollout and shadow mode set from the same screen.
    admin = console.sign_in("ada", "admin").go("#/controls")
    admin.find("#controls-reason").send_keys("Fixed the knowledge base")
    admin.find("#resume-agent").click()
    admin.wait(lambda d: admin.attr("#agent-state", "data-state") == "active")
    slider = admin.find("#rollout")  # by keyboard: Home is 0 %, each arrow a 5 % step
    slider.send_keys(Keys.HOME, *[Keys.ARROW_RIGHT] * 5)
    assert admin.find("#rollout-value").text == "25 %"
    admin.find("#shadow").click()
    admin.find("#controls-reason").send_keys("Shadow at 25 % first")
    admin.find("#save-controls").click()
    admin.wait(lambda d: admin.attr("#agent-state", "data-state") == "shadow")
    admin.screenshot("controls-shadow")
    controls = api.get("/agent/controls/", headers=bearer("ada", "admin")).json()
    assert (controls["enabled"], controls["mode"], controls["rollout_percent"]) == (True, "shadow", 25)
