"""The fault suite's checks fail on what they are there to catch (no storage needed)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from shared.domain.models import ActionType, HistoryEntry, RecordStatus, RequestRecord, Ticket
from tests.faults.support import Audit, assert_caps_exact, assert_exactly_once

NOW = datetime(2026, 11, 30, 5, 10, tzinfo=UTC)
HOUR = "20261130/05"


def entry(ticket_id: int, seq: int, action: ActionType, reason: str | None = None) -> HistoryEntry:
    params = {"reason": reason} if reason else {}
    return HistoryEntry.model_construct(
        ticket_id=ticket_id, seq=seq, action_type=action, executed_at=NOW, action_params=params
    )


def done(request_id: str, action: ActionType | None, version: int | None) -> RequestRecord:
    return RequestRecord(
        request_id=request_id, status=RecordStatus.COMPLETED, action_type=action, ticket_version=version
    )


def healthy() -> Audit:
    """Ticket 1 auto-resolved by request a (b, a second request, superseded); 2 deferred by c."""
    return Audit(
        tickets={1: Ticket.model_construct(version=2), 2: Ticket.model_construct(version=2)},
        entries={
            1: [entry(1, 2, ActionType.AUTO_RESOLVE)],
            2: [entry(2, 2, ActionType.DEFER_TO_HUMAN, "hourly_cap_reached")],
        },
        records={
            1: {"a": done("a", ActionType.AUTO_RESOLVE, 2), "b": done("b", None, None)},
            2: {"c": done("c", ActionType.DEFER_TO_HUMAN, 2)},
        },
        slots=Counter({HOUR: 1}),
    )


ACCEPTED = {"a": 1, "b": 1, "c": 2}


def test_a_healthy_audit_passes() -> None:
    assert_exactly_once(healthy(), [1, 2], ACCEPTED)
    assert_caps_exact(healthy(), 1)


def test_a_lost_ticket_fails() -> None:
    found = healthy()
    del found.tickets[2]
    with pytest.raises(AssertionError, match="ticket 2 lost"):
        assert_exactly_once(found, [1, 2], ACCEPTED)


def test_a_doubled_action_fails() -> None:
    found = healthy()
    found.tickets[1] = Ticket.model_construct(version=3)
    found.entries[1].append(entry(1, 3, ActionType.AUTO_RESOLVE))
    found.records[1]["b"] = done("b", ActionType.AUTO_RESOLVE, 3)
    with pytest.raises(AssertionError, match="more than one autonomous action"):
        assert_exactly_once(found, [1, 2], ACCEPTED)


def test_an_action_without_its_record_or_a_record_without_its_action_fails() -> None:
    found = healthy()
    found.records[1]["a"] = done("a", None, None)
    with pytest.raises(AssertionError, match="records committed"):
        assert_exactly_once(found, [1, 2], ACCEPTED)


def test_a_history_gap_fails() -> None:
    found = healthy()
    found.tickets[1] = Ticket.model_construct(version=3)
    with pytest.raises(AssertionError, match="history seqs"):
        assert_exactly_once(found, [1, 2], ACCEPTED)


def test_a_request_never_completed_a_claim_left_or_a_poisoned_message_fails() -> None:
    for spoil, message in [
        (lambda a: a.records[1].pop("b"), "request b on 1: no record"),
        (
            lambda a: a.records[1].__setitem__(
                "b", RequestRecord(request_id="b", status=RecordStatus.INPROGRESS)
            ),
            "claims left INPROGRESS",
        ),
        (lambda a: setattr(a, "poisoned", 1), "poisoned"),
    ]:
        found = healthy()
        spoil(found)
        with pytest.raises(AssertionError, match=message):
            assert_exactly_once(found, [1, 2], ACCEPTED)


def test_a_leaked_slot_an_overshoot_or_a_refusal_under_the_cap_fails() -> None:
    found = healthy()
    found.slots[HOUR] += 1  # a slot no committed action holds
    with pytest.raises(AssertionError, match="slots held"):
        assert_caps_exact(found, 1)
    with pytest.raises(AssertionError):
        assert_caps_exact(healthy(), 0)  # one action over a cap of none
    with pytest.raises(AssertionError):
        assert_caps_exact(healthy(), 2)  # refused for the cap with a slot still free
