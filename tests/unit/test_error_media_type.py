"""Error bodies by `Accept` (SPEC §5): problem+json when the request names it, application/json
otherwise (the web app sends `Accept: */*` and parses only application/json); one problem object."""

from __future__ import annotations

import json

import pytest

from functions.http import error_media_type, problem
from shared.errors import Throttled, ValidationFailed
from tests.conftest import bearer
from tests.unit.http_client import invoke

PROBLEM, JSON = "application/problem+json", "application/json"

CASES = {
    None: JSON,
    "": JSON,
    "*/*": JSON,  # what the web app sends
    "application/json": JSON,
    "application/*": JSON,
    "application/problem+json": PROBLEM,
    "Application/Problem+JSON": PROBLEM,  # media types are case-insensitive
    "application/json, application/problem+json": PROBLEM,  # named, as preferred as json
    "application/problem+json, application/json;q=0.9": PROBLEM,
    "application/json;q=0.5, application/problem+json;q=0.8": PROBLEM,
    "application/json;q=0.9, application/problem+json;q=0.8": JSON,  # named, but json preferred
    "application/problem+json;q=0.5, */*": JSON,  # */* gives json q=1
    "application/problem+json;q=0": JSON,  # named only to refuse it
    "application/problem+json ; q=1.0 , text/html": PROBLEM,
    "text/html, application/xhtml+xml, */*;q=0.8": JSON,  # a browser's navigation
    "text/html": JSON,  # nothing acceptable: still a body the app can parse
    "garbage": JSON,
    ";;,,;q=": JSON,
    "application/problem+json;q=abc": JSON,  # an unreadable q counts as 0
    "application/problem+jsonx": JSON,
    "application/json+problem": JSON,
}


@pytest.mark.parametrize("accept", list(CASES), ids=[repr(a) for a in CASES])
def test_the_media_type_follows_accept(accept: str | None) -> None:
    assert error_media_type(accept) == CASES[accept]


@pytest.mark.parametrize("accept", list(CASES), ids=[repr(a) for a in CASES])
def test_the_body_is_the_same_problem_object_whatever_the_media_type(accept: str | None) -> None:
    error = ValidationFailed("The request has invalid fields; see errors.", [{"loc": "x", "msg": "bad"}])
    response = problem(error, accept)
    reference = problem(error)
    assert response.mimetype == CASES[accept] and response.status_code == 400
    assert json.loads(response.get_body()) == json.loads(reference.get_body())
    body = json.loads(response.get_body())
    assert body["type"].endswith("validation_error") and body["code"] == "validation_error"
    assert body["status"] == 400 and body["detail"] and body["errors"] == [{"loc": "x", "msg": "bad"}]


def test_headers_stay_whatever_the_media_type() -> None:
    for accept in ("*/*", PROBLEM):
        response = problem(Throttled("Slow down.", retry_after=7, headers={"RateLimit-Limit": "50"}), accept)
        assert response.headers["Retry-After"] == "7" and response.headers["RateLimit-Limit"] == "50"


@pytest.mark.usefixtures("container")
@pytest.mark.parametrize(
    ("accept", "expected"), [(None, JSON), ("*/*", JSON), ("application/json", JSON), (PROBLEM, PROBLEM)]
)
def test_every_error_path_of_the_adapter_negotiates(accept: str | None, expected: str) -> None:
    headers = {"Accept": accept} if accept else {}
    unauthenticated = invoke("tickets_list", headers=headers)  # 401 from the access check
    hidden = invoke("tickets_get", headers=headers | bearer("bob"), route={"id": "999"})  # 404
    bad = invoke(
        "tickets_create",
        "POST",
        body=b"{",
        headers=headers | bearer("alice") | {"Content-Type": "application/json"},
    )
    for response, status in ((unauthenticated, 401), (hidden, 404), (bad, 400)):
        assert response.status_code == status and response.mimetype == expected
        assert json.loads(response.get_body())["status"] == status
