"""The Webhook port over HTTP: a Slack/Teams-compatible incoming webhook (`NOTIFY_WEBHOOK_URL`).

Best effort and bounded: each attempt has one deadline covering connect, send and the answer
(the agent client's deadline transport, so a server trickling bytes cannot hold it), at most
`attempts` attempts with a short backoff, so a post costs at most about
attempts x timeout + the backoffs (~10 s with the defaults) and never raises. The URL is a
secret (it carries the webhook's token): it is never logged, and no httpx exception, whose text
may hold it, leaves this module.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

import httpx

from shared.deadline import DeadlineTransport, attempt_deadline

log = logging.getLogger("resolvemeq.webhook")


class HttpWebhook:
    """POSTs `{"text": ...}` as JSON. Retries timeouts, connection errors, 429 and 5xx; any
    other answer outside 2xx (a wrong or revoked URL) fails at once."""

    def __init__(
        self,
        url: str,
        timeout: float = 3.0,
        attempts: int = 3,
        backoff: float = 0.5,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self._url, self._timeout, self._attempts, self._backoff = url, timeout, attempts, backoff
        self._sleep = sleep
        self._client = httpx.Client(
            headers={"User-Agent": "resolvemeq-functions", "Accept-Encoding": "identity"},
            timeout=httpx.Timeout(timeout),
            transport=transport or DeadlineTransport(),
            follow_redirects=False,
        )

    def post(self, text: str) -> bool:
        body = json.dumps({"text": text}).encode()
        for attempt in range(1, self._attempts + 1):
            status, retry = self._attempt(body)
            if status == "ok":
                return True
            if not retry or attempt == self._attempts:
                log.warning("webhook post failed after %d attempt(s): %s", attempt, status)
                return False
            self._sleep(self._backoff * 2 ** (attempt - 1))
        return False  # not reached

    def _attempt(self, body: bytes) -> tuple[str, bool]:
        """("ok", _) or (what failed, whether to retry)."""
        try:
            with (
                attempt_deadline(self._timeout),
                self._client.stream(
                    "POST", self._url, content=body, headers={"Content-Type": "application/json"}
                ) as response,
            ):
                code = response.status_code  # the body is not read: the status says it all
        except httpx.TimeoutException:
            return "timeout", True
        except httpx.TransportError as exc:
            return f"connection error ({type(exc).__name__})", True
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
            return f"request refused ({type(exc).__name__})", False
        if 200 <= code < 300:
            return "ok", False
        return f"HTTP {code}", code == 429 or code >= 500

    def close(self) -> None:
        self._client.close()
