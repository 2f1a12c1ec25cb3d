"""A stand-in for an Azure OpenAI resource: a tiny HTTP server on 127.0.0.1 that speaks the
chat-completions API at ``/openai/deployments/{deployment}/chat/completions``.

It answers from a script (each request takes the next reply; the last one repeats) and records
every request. A reply is a status, headers and a body, after an optional delay; or a function of
the request that returns one. ``model_answer`` builds the body Azure sends, around the JSON
content a model would write; ``known_fix`` plays a model that reads the retrieved entries and
proposes the first fix (or asks for clarification).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.helpers import QuietHandler

MODEL = "gpt-4o-2024-08-06"
PATH_PREFIX = "/openai/deployments/"
PATH_SUFFIX = "/chat/completions"


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class Seen:
    """One request as the stand-in received it."""

    deployment: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def system(self) -> str:
        return str(self.body["messages"][0]["content"])

    @property
    def user(self) -> str:
        return str(self.body["messages"][1]["content"])

    def retrieved(self) -> list[dict[str, Any]]:
        """The knowledge-base entries the analyser gave as context."""
        lines = self.user.splitlines()
        return list(json.loads(lines[1]))


Script = Reply | Callable[[Seen], Reply]


def model_answer(content: dict[str, Any] | str, *, model: str = MODEL, finish_reason: str = "stop") -> Reply:
    """A 200 chat completion whose message content is `content` (a dict is sent as its JSON)."""
    text = content if isinstance(content, str) else json.dumps(content)
    body = {
        "id": "chatcmpl-standin",
        "object": "chat.completion",
        "created": 1767225600,
        "model": model,
        "choices": [
            {
                "index": 0,
                "finish_reason": finish_reason,
                "message": {"role": "assistant", "content": text, "refusal": None},
            }
        ],
        "usage": {"prompt_tokens": 500, "completion_tokens": 120, "total_tokens": 620},
    }
    return Reply(body=json.dumps(body).encode(), headers={"Content-Type": "application/json"})


def answer(**fields: Any) -> dict[str, Any]:
    """A complete structured answer (every field the schema requires), overridden by `fields`."""
    base: dict[str, Any] = {
        "recommended_action": "request_clarification",
        "solution_id": None,
        "confidence": 0.4,
        "success_probability": 0.0,
        "severity": "low",
        "category": "other",
        "suggested_team": "Service Desk",
        "complexity": "low",
        "steps": [],
        "questions": ["Which device is affected?"],
        "estimated_time": "unknown",
        "reasoning": "Stand-in answer.",
        "injection_attempt": False,
    }
    return {**base, **fields}


def status(code: int, headers: dict[str, str] | None = None, body: dict[str, Any] | None = None) -> Reply:
    payload = body or {"error": {"code": str(code), "message": "stand-in error"}}
    return Reply(code, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})})


def known_fix(seen: Seen) -> Reply:
    """A model that proposes the first retrieved fix with high confidence, else asks a question."""
    fixes = [e for e in seen.retrieved() if e["kind"] == "fix"]
    if not fixes:
        return model_answer(answer())
    fix = fixes[0]
    return model_answer(
        answer(
            recommended_action="auto_resolve",
            solution_id=fix["id"],
            confidence=0.93,
            success_probability=0.9,
            category=fix["category"],
            steps=fix["steps"],
            questions=[],
            estimated_time="10 minutes",
            reasoning=f"The ticket describes {fix['title']}.",
        )
    )


class StandIn(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, *script: Script) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script: list[Script] = list(script) or [known_fix]
        self.seen: list[Seen] = []
        self._lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def next_reply(self, seen: Seen) -> Reply:
        with self._lock:
            self.seen.append(seen)
            step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        return step(seen) if callable(step) else step


class _Handler(QuietHandler):
    server: StandIn
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not (url.path.startswith(PATH_PREFIX) and url.path.endswith(PATH_SUFFIX)):
            self._send(status(404))
            return
        deployment = url.path[len(PATH_PREFIX) : -len(PATH_SUFFIX)]
        seen = Seen(deployment, parse_qs(url.query), dict(self.headers.items()), json.loads(body))
        reply = self.server.next_reply(seen)
        if reply.delay:
            time.sleep(reply.delay)
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (its deadline)
            pass
