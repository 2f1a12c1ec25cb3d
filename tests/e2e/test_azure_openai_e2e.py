"""The Azure OpenAI analyser end to end: a real host with AGENT_KIND=azure_openai pointed at the local
stand-in of the chat-completions API, Azurite behind it."""

from __future__ import annotations

from typing import Any

import httpx

from tests.agent.standin import StandIn, status
from tests.conftest import bearer
from tests.e2e.conftest import Stack, create_ticket, wait_until
from tests.helpers import serving

KEY = "aoai-e2e-key-4c1d8e7f-do-not-leak-9876543210"
DEPLOYMENT = "triage"
STAFF = bearer("sam", "staff")
RESET = {
    "issue_type": "Password reset",
    "description": "I forgot my password and need to reset it.",
    "category": "account",
}
RANSOM = {
    "issue_type": "Files encrypted",
    "description": "Ransomware encrypted my files and there is a ransom note on the screen.",
    "category": "security",
}


def azure_openai(standin: StandIn, **more: Any) -> dict[str, Any]:
    return {
        "AGENT_KIND": "azure_openai",
        "AZURE_OPENAI_ENDPOINT": standin.endpoint,
        "AZURE_OPENAI_DEPLOYMENT": DEPLOYMENT,
        "AZURE_OPENAI_API_KEY": KEY,
        **more,
    }


def history(api: httpx.Client, ticket_id: int) -> list[dict[str, Any]]:
    response = api.get(f"/tickets/{ticket_id}/action-history/", headers=STAFF)
    assert response.status_code == 200
    return list(response.json()["action_history"])


def processed(api: httpx.Client, ids: list[int]) -> bool:
    return all(api.get(f"/tickets/{i}/", headers=STAFF).json()["agent_processed"] for i in ids)


def test_a_known_problem_is_resolved_and_ransomware_escalated_without_asking_the_model(stack: Stack) -> None:
    with serving(StandIn()) as standin:
        host = stack.host(**azure_openai(standin))
        with stack.client(host) as api:
            reset = create_ticket(api, "alice", **RESET)
            ransom = create_ticket(api, "alice", **RANSOM)
            for ticket in (reset, ransom):
                response = api.post(f"/tickets/{ticket['id']}/process/", headers=bearer("alice"))
                assert response.status_code == 202
            wait_until(lambda: processed(api, [reset["id"], ransom["id"]]), timeout=30)
            [resolved] = history(api, reset["id"])
            assert resolved["action_type"] == "AUTO_RESOLVE" and resolved["confidence_score"] >= 0.8
            assert resolved["action_params"]["agent"]["kind"] == "azure_openai"
            assert resolved["action_params"]["knowledge_base_entries"]
            assert api.get(f"/tickets/{reset['id']}/", headers=STAFF).json()["status"] == "resolved"
            [escalated] = history(api, ransom["id"])
            assert escalated["action_type"] == "ESCALATE"
        [seen] = standin.seen  # only the password reset reached the model
        assert seen.deployment == DEPLOYMENT and seen.headers["api-key"] == KEY
        assert "ransom note" not in seen.user and "forgot my password" in seen.user
        assert KEY not in host.output()


def test_with_azure_openai_failing_the_ticket_goes_to_people_and_the_key_stays_out_of_the_logs(
    stack: Stack,
) -> None:
    echo = status(500, body={"error": {"message": f"internal error for key {KEY}"}})
    with serving(StandIn(echo)) as standin:
        host = stack.host(**azure_openai(standin, AGENT_RETRY_SECONDS=0, AZURE_OPENAI_TIMEOUT_SECONDS=2))
        with stack.client(host) as api:
            ticket = create_ticket(api, "alice", **RESET)
            assert api.post(f"/tickets/{ticket['id']}/process/", headers=bearer("alice")).status_code == 202
            wait_until(lambda: processed(api, [ticket["id"]]), timeout=60)
            [entry] = history(api, ticket["id"])
            assert entry["action_type"] == "DEFER_TO_HUMAN"
            assert entry["action_params"]["reason"] == "agent_unavailable"
            assert api.get(f"/tickets/{ticket['id']}/", headers=STAFF).json()["status"] == "open"
        assert len(standin.seen) >= 4  # the worker tried again before deferring
        assert KEY not in host.output()
