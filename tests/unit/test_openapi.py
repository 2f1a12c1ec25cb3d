"""The OpenAPI document is built from, and agrees with, what the app registers."""

from __future__ import annotations

from shared.config import Settings
from shared.container import Container, use_container
from tests.unit.http_client import REGISTERED, invoke, payload


def test_every_http_function_is_documented_with_its_method(settings: Settings) -> None:
    use_container(Container.in_memory(settings))
    try:
        response = invoke("ops_openapi")
    finally:
        use_container(None)
    doc = payload(response)
    assert response.status_code == 200 and doc["openapi"] == "3.1.0"
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    registered = set()
    for fn in REGISTERED:
        trigger = fn.get_trigger()
        if getattr(trigger, "route", None) is not None:
            path = "/api/" + trigger.route.replace(":int}", "}") + "/"
            registered |= {
                (path, str(m.value if hasattr(m, "value") else m).upper()) for m in trigger.methods
            }
    assert documented == registered
    create = doc["paths"]["/api/tickets/"]["post"]
    body = create["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["issue_type"] and body["additionalProperties"] is False
    assert "201" in create["responses"] and create["security"] == [{"bearer": []}]
    listing = {p["name"] for p in doc["paths"]["/api/tickets/"]["get"]["parameters"]}
    assert listing == {"status", "limit", "cursor", "mine"}
