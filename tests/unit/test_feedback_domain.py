"""The answer to "did the fix hold?" as pure functions: every transition and every refusal.

No storage: an answer on a ticket in memory gives the changed ticket and its entries
(FEEDBACK_RECEIVED, then REOPEN when it reopens the ticket), and leaves the ticket given as it was.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from shared.domain.feedback import (
    DEFAULT_REOPEN_REASON,
    NoResolution,
    ResolutionFeedback,
    answer,
)
from shared.domain.models import (
    ActionType,
    FeedbackAnswer,
    Priority,
    Resolution,
    ResolutionOutcome,
    Status,
    Ticket,
)

CREATED = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
RESOLVED_AT = CREATED + timedelta(minutes=5)
NOW = CREATED + timedelta(hours=3)
LATER = NOW + timedelta(hours=1)
YES = ResolutionFeedback(resolution_confirmed=True, satisfaction_score=5, feedback_text="thanks")
NO = ResolutionFeedback(resolution_confirmed=False, satisfaction_score=None, feedback_text="still broken")


def resolved(outcome: ResolutionOutcome = ResolutionOutcome.PENDING, **fields: Any) -> Ticket:
    base: dict[str, Any] = {
        "id": 7,
        "issue_type": "Password reset",
        "description": "I forgot my password",
        "category": "account",
        "tags": [],
        "status": Status.RESOLVED,
        "user": "alice",
        "priority": Priority.MEDIUM,
        "created_at": CREATED,
        "updated_at": RESOLVED_AT,
        "agent_processed": True,
        "resolution": Resolution(autonomous_action="AUTO_RESOLVE", outcome=outcome),
        "version": 2,
    }
    return Ticket(**{**base, **fields})


def body(**fields: Any) -> ResolutionFeedback:
    return ResolutionFeedback.model_validate_json(json.dumps(fields))


# --- the body -------------------------------------------------------------------------------------


def test_the_web_clients_zero_stars_is_read_as_no_score() -> None:
    assert body(resolution_confirmed=False, satisfaction_score=0).satisfaction_score is None
    assert body(resolution_confirmed=True, satisfaction_score=None).satisfaction_score is None
    assert body(resolution_confirmed=True).satisfaction_score is None
    assert [
        body(resolution_confirmed=True, satisfaction_score=s).satisfaction_score for s in range(1, 6)
    ] == [
        1,
        2,
        3,
        4,
        5,
    ]


def test_a_null_text_is_no_text_and_2000_characters_fit() -> None:
    assert body(resolution_confirmed=True, feedback_text=None).feedback_text == ""
    assert len(body(resolution_confirmed=True, feedback_text="é" * 2000).feedback_text) == 2000


@pytest.mark.parametrize(
    ("fields", "loc"),
    [
        ({"resolution_confirmed": True, "satisfaction_score": 7}, "satisfaction_score"),
        ({"resolution_confirmed": True, "satisfaction_score": 6}, "satisfaction_score"),
        ({"resolution_confirmed": True, "satisfaction_score": -1}, "satisfaction_score"),
        ({"resolution_confirmed": True, "satisfaction_score": "five"}, "satisfaction_score"),
        ({"resolution_confirmed": True, "satisfaction_score": "5"}, "satisfaction_score"),
        ({"resolution_confirmed": True, "satisfaction_score": 4.5}, "satisfaction_score"),
        ({"resolution_confirmed": True, "satisfaction_score": True}, "satisfaction_score"),
        ({"satisfaction_score": 5}, "resolution_confirmed"),
        ({"resolution_confirmed": "true"}, "resolution_confirmed"),
        ({"resolution_confirmed": 1}, "resolution_confirmed"),
        ({"resolution_confirmed": None}, "resolution_confirmed"),
        ({"resolution_confirmed": True, "feedback_text": "x" * 2001}, "feedback_text"),
        ({"resolution_confirmed": True, "feedback_text": "x" * 5120}, "feedback_text"),
        ({"resolution_confirmed": True, "feedback_text": 42}, "feedback_text"),
        ({"resolution_confirmed": True, "rating": 5}, "rating"),
    ],
)
def test_a_bad_body_is_refused_naming_the_field(fields: dict[str, Any], loc: str) -> None:
    with pytest.raises(ValidationError) as refused:
        body(**fields)
    assert [e["loc"][0] for e in refused.value.errors()] == [loc]


def test_a_lone_surrogate_in_the_text_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError) as refused:  # as a dict: the JSON parser refuses it earlier
        ResolutionFeedback.model_validate({"resolution_confirmed": True, "feedback_text": "ok \ud800"})
    assert [e["loc"] for e in refused.value.errors()] == [("feedback_text",)]


# --- yes -----------------------------------------------------------------------------------------


def test_yes_confirms_the_resolution_and_closes_the_ticket() -> None:
    ticket = resolved()
    before = ticket.model_copy(deep=True)
    done = answer(ticket, YES, "alice", NOW)
    assert ticket == before  # the ticket given is left as it was
    [entry] = done.entries
    assert not done.reopened
    assert done.ticket.status == Status.CLOSED and done.ticket.version == 3 and done.ticket.updated_at == NOW
    r = done.ticket.resolution
    assert r is not None
    assert (r.outcome, r.resolution_confirmed, r.satisfaction_score, r.feedback_text) == (
        ResolutionOutcome.CONFIRMED,
        True,
        5,
        "thanks",
    )
    assert r.response_received_at == NOW and r.outcome_at == NOW
    assert r.previous_outcome == ResolutionOutcome.PENDING and r.previous_answer is None
    assert not r.reopened
    assert (entry.action_type, entry.seq, entry.executed_by, entry.executed_at) == (
        ActionType.FEEDBACK_RECEIVED,
        3,
        "alice",
        NOW,
    )
    assert entry.action_params == {
        "confirmed": True,
        "score": 5,
        "replaced": False,
        "previous_answer": None,
        "previous_outcome": "pending",
    }
    assert entry.before_state == ticket.state() and entry.after_state == done.ticket.state()
    assert not entry.rollback_possible


# --- no ------------------------------------------------------------------------------------------


def test_no_fails_the_resolution_and_reopens_the_ticket_in_two_steps() -> None:
    ticket = resolved()
    done = answer(ticket, NO, "alice", NOW)
    received, reopen = done.entries
    assert done.reopened
    assert [(e.action_type, e.seq) for e in done.entries] == [
        (ActionType.FEEDBACK_RECEIVED, 3),
        (ActionType.REOPEN, 4),
    ]
    assert received.after_state == reopen.before_state  # one step after the other
    assert received.after_state["status"] == "resolved"
    assert received.action_params["confirmed"] is False and received.action_params["score"] is None
    t = done.ticket
    assert (t.status, t.priority, t.version) == (Status.ESCALATED, Priority.HIGH, 4)
    r = t.resolution
    assert r is not None
    assert (r.outcome, r.resolution_confirmed, r.satisfaction_score) == (
        ResolutionOutcome.FAILED,
        False,
        None,
    )
    assert r.reopened and r.reopened_at == NOW and r.reopened_reason == "still broken" and r.reopen_seq == 4
    assert r.outcome_at == NOW and r.previous_outcome == ResolutionOutcome.PENDING
    assert (reopen.executed_by, reopen.agent_reasoning) == ("alice", "still broken")
    assert reopen.action_params == {
        "trigger": "resolution_feedback",
        "priority": "high",
        "from_status": "resolved",
    }
    assert reopen.after_state == t.state()


def test_no_without_text_reopens_with_the_default_reason() -> None:
    blank = ResolutionFeedback(resolution_confirmed=False, feedback_text="   ")
    r = answer(resolved(), blank, "alice", NOW).ticket.resolution
    assert r is not None and r.reopened_reason == DEFAULT_REOPEN_REASON


def test_a_reopen_never_lowers_a_critical_priority() -> None:
    done = answer(resolved(priority=Priority.CRITICAL), NO, "alice", NOW)
    assert done.ticket.priority == Priority.CRITICAL
    done = answer(resolved(priority=Priority.LOW), NO, "alice", NOW)
    assert done.ticket.priority == Priority.HIGH


def test_no_on_a_closed_ticket_reopens_it() -> None:
    done = answer(resolved(status=Status.CLOSED), NO, "alice", NOW)
    assert done.reopened and done.ticket.status == Status.ESCALATED


@pytest.mark.parametrize(
    "status",
    [Status.ASSIGNED, Status.IN_PROGRESS, Status.OPEN, Status.ESCALATED, Status.PENDING_CLARIFICATION],
)
def test_no_on_a_ticket_people_hold_is_recorded_and_their_routing_kept(status: Status) -> None:
    ticket = resolved(status=status, priority=Priority.LOW, assigned_team="network")
    done = answer(ticket, NO, "alice", NOW)
    [entry] = done.entries
    assert entry.action_type == ActionType.FEEDBACK_RECEIVED and not done.reopened
    t = done.ticket
    assert (t.status, t.priority, t.assigned_team) == (status, Priority.LOW, "network")
    assert t.resolution is not None and t.resolution.outcome == ResolutionOutcome.FAILED
    assert not t.resolution.reopened


# --- a second answer replaces the first -----------------------------------------------------------


def test_yes_after_no_closes_the_reopened_ticket_and_keeps_the_answer_it_replaced() -> None:
    first = answer(resolved(), NO, "alice", NOW)
    second = answer(first.ticket, YES, "alice", LATER)
    [entry] = second.entries
    t = second.ticket
    assert t.status == Status.CLOSED and t.version == 5
    r = t.resolution
    assert r is not None
    assert (r.outcome, r.resolution_confirmed, r.satisfaction_score, r.feedback_text) == (
        ResolutionOutcome.CONFIRMED,
        True,
        5,
        "thanks",
    )
    assert r.outcome_at == LATER and r.previous_outcome == ResolutionOutcome.FAILED
    assert r.previous_answer == FeedbackAnswer(
        resolution_confirmed=False, satisfaction_score=None, answered_at=NOW
    )
    # The reopen happened: it stays recorded (reopened, when and why), as the REOPEN entry does.
    assert r.reopened and r.reopened_at == NOW and r.reopen_seq == 4
    assert entry.action_params["replaced"] is True
    assert entry.action_params["previous_answer"] == {
        "resolution_confirmed": False,
        "satisfaction_score": None,
        "answered_at": NOW.isoformat().replace("+00:00", "Z"),
    }
    assert entry.action_params["previous_outcome"] == "failed"


def test_no_after_yes_reopens_the_closed_ticket() -> None:
    first = answer(resolved(), YES, "alice", NOW)
    second = answer(first.ticket, NO, "sam", LATER)
    assert second.reopened and [e.seq for e in second.entries] == [4, 5]
    t = second.ticket
    assert t.status == Status.ESCALATED and t.priority == Priority.HIGH
    r = t.resolution
    assert r is not None
    assert r.outcome == ResolutionOutcome.FAILED and r.previous_outcome == ResolutionOutcome.CONFIRMED
    assert r.previous_answer is not None and r.previous_answer.resolution_confirmed is True
    assert r.previous_answer.satisfaction_score == 5 and r.reopen_seq == 5
    assert all(e.executed_by == "sam" for e in second.entries)  # staff answering for the owner


def test_the_same_answer_again_replaces_it_without_moving_the_outcome() -> None:
    first = answer(resolved(), YES, "alice", NOW)
    again = answer(first.ticket, body(resolution_confirmed=True, satisfaction_score=3), "alice", LATER)
    r = again.ticket.resolution
    assert r is not None and again.ticket.status == Status.CLOSED
    assert r.outcome == ResolutionOutcome.CONFIRMED and r.satisfaction_score == 3 and r.feedback_text == ""
    assert r.outcome_at == NOW and r.previous_outcome == ResolutionOutcome.PENDING  # no outcome change
    assert r.response_received_at == LATER
    assert r.previous_answer == FeedbackAnswer(
        resolution_confirmed=True, satisfaction_score=5, answered_at=NOW
    )


def test_no_after_no_records_the_answer_but_does_not_reopen_twice() -> None:
    first = answer(resolved(), NO, "alice", NOW)
    again = answer(first.ticket, body(resolution_confirmed=False, feedback_text="worse now"), "alice", LATER)
    [entry] = again.entries
    assert entry.action_type == ActionType.FEEDBACK_RECEIVED and not again.reopened
    r = again.ticket.resolution
    assert r is not None and r.feedback_text == "worse now" and r.reopened_at == NOW and r.reopen_seq == 4
    assert again.ticket.status == Status.ESCALATED


def test_an_answer_after_the_window_is_still_taken() -> None:
    for feedback, outcome in ((YES, ResolutionOutcome.CONFIRMED), (NO, ResolutionOutcome.FAILED)):
        done = answer(resolved(ResolutionOutcome.ASSUMED), feedback, "alice", NOW)
        r = done.ticket.resolution
        assert r is not None and r.outcome == outcome
        assert r.previous_outcome == ResolutionOutcome.ASSUMED and r.outcome_at == NOW
        assert done.entries[0].action_params["previous_outcome"] == "assumed"


# --- refusals ------------------------------------------------------------------------------------


def test_a_ticket_without_a_resolution_or_with_a_voided_one_takes_no_answer() -> None:
    for ticket in (
        resolved(resolution=None, status=Status.OPEN),
        resolved(ResolutionOutcome.VOIDED, status=Status.NEW),
        resolved(ResolutionOutcome.VOIDED),
    ):
        for feedback in (YES, NO):
            with pytest.raises(NoResolution):
                answer(ticket, feedback, "alice", NOW)
