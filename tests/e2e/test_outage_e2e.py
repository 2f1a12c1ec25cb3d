"""A storage outage while the host runs, with Sentry listening: fast 503s, and nothing leaks."""

from __future__ import annotations

import time

from shared.storage.clients import DEV_KEY
from tests.conftest import token
from tests.e2e.conftest import Stack, create_ticket, wait_until
from tests.helpers import SentryCapture, serving

SECRET_TEXT = "my-home-wifi-password-is-hunter2"
EMAIL = "alice.private@example.com"
CLIENT_IP = "203.0.113.77"


def test_a_storage_outage_answers_503_fast_and_sends_sentry_nothing_secret(stack: Stack) -> None:
    with serving(SentryCapture()) as capture:
        host = stack.host(SENTRY_DSN=capture.dsn, SENTRY_TRACES_SAMPLE_RATE=0)
        alice = token(EMAIL)
        headers = {
            "Authorization": f"Bearer {alice}",
            "X-Forwarded-For": CLIENT_IP,
            "Accept": "application/problem+json",
        }
        with stack.client(host) as api:
            ticket = create_ticket(api, EMAIL, issue_type="Wi-Fi", description=SECRET_TEXT)
            stack.emulator.stop()
            calls = [
                ("GET", f"/tickets/{ticket['id']}/", None),
                ("GET", "/tickets/", None),
                ("POST", "/tickets/", {"issue_type": "Wi-Fi", "description": SECRET_TEXT}),
                ("POST", f"/tickets/{ticket['id']}/process/", None),
                ("GET", f"/tickets/{ticket['id']}/action-history/", None),
            ]
            for method, path, body in calls:
                started = time.monotonic()
                response = api.request(method, path, json=body, headers=headers)
                elapsed = time.monotonic() - started
                assert response.status_code == 503, (path, response.status_code, response.text)
                assert response.headers["content-type"].startswith("application/problem+json")
                assert response.json()["code"] == "storage_unavailable" and response.headers["Retry-After"]
                assert elapsed < 10, (path, elapsed)
                assert SECRET_TEXT not in response.text and "AccountKey" not in response.text
        wait_until(lambda: capture.envelopes, timeout=10)
        time.sleep(1)
        sent = b"\n".join(capture.envelopes).decode("utf-8", "replace")
        for leak in (DEV_KEY, DEV_KEY[:20], alice, SECRET_TEXT, EMAIL, CLIENT_IP, "AccountKey="):
            assert leak not in sent, f"{leak[:12]}... reached Sentry"
