"""The analytics counters: what every figure of SPEC §8 is computed from.

A `Tally` is a bag of integer counters for one UTC day. Every figure is a sum (or a ratio of
sums) of tallies over the days asked for, so a read costs the number of days, never the number
of tickets. The counters are kept as deltas: an event adds what it changed (a rollback, a changed
answer or a reassessed outcome subtracts what the earlier state had added), so the sum over any
days equals a from-scratch count over the source records (`manage analytics recompute`).

Which day a counter lands on:
- resolution counters (`RESOLUTIONS`..`SATISFACTION_COUNT`, the per-action ones): the day of the
  autonomous action that created the resolution, whatever day its outcome changes later; so a
  week's success rate is the fate of that week's resolutions;
- the others: the day of the event (ticket created, agent decision, action, rollback, close).

Counter names are plain words, or `word:KEY` for the per-key families (a Table property adapter
maps the colon).

How the events fill them (shared/domain/analytics.py): a voided resolution counts in
`resolutions` and `voided` only, so the outcome counters, `reopened` and satisfaction are those
of resolutions that stand, and pending = resolutions - voided - confirmed - failed - assumed. An
answer that replaces another moves the counters from the old answer to the new one. `actions:*`
includes the system's escalation by a follow-up check, which is no agent decision (`decisions`).
"""

from __future__ import annotations

from collections import Counter
from datetime import date

Tally = Counter[str]  # counter name -> delta (or sum); missing names are 0
Tallies = dict[date, Tally]  # UTC day -> its tally

# --- resolutions, on the day of the resolving action
RESOLUTIONS = "resolutions"  # resolutions created (voided ones included)
VOIDED = "voided"  # resolutions whose action was rolled back
CONFIRMED = "confirmed"  # outcome confirmed (the user said it works)
FAILED = "failed"  # outcome failed (the user said it does not)
ASSUMED = "assumed"  # outcome assumed (no answer within FEEDBACK_WINDOW_SECONDS)
REOPENED = "reopened"  # resolutions reopened by a "no"
SATISFACTION_SUM = "satisfaction_sum"  # of the current answers' scores (1..5)
SATISFACTION_COUNT = "satisfaction_count"  # current answers with a score
# per autonomous action of the resolution (action_type_breakdown)
RESOLUTIONS_BY = "resolutions"  # resolutions:AUTO_RESOLVE (voided ones excluded)
CONFIRMED_BY = "confirmed"  # confirmed:AUTO_RESOLVE
FAILED_BY = "failed"  # failed:AUTO_RESOLVE

# --- events, on their day
TICKETS = "tickets"  # tickets created
PROCESSED = "processed"  # tickets the agent processed for the first time (agent_processed set)
DECISIONS = "decisions"  # agent decisions with a confidence (actions, deferrals, shadow)
CONFIDENCE_MILLI = "confidence_milli"  # sum of their confidences, in thousandths
CONFIDENCE_BY = "confidence"  # confidence:high|medium|low (by the configured thresholds)
ACTIONS_BY = "actions"  # actions:AUTO_RESOLVE: autonomous actions executed (rolled back included)
DEFERRED = "deferred"  # deferrals to humans (gate, cap, rollout, paused, agent down)
SHADOWED = "shadowed"  # shadow-mode decisions (recorded, not acted on)
ROLLED_BACK = "rolled_back"  # autonomous actions rolled back, on the rollback's day
CLOSED = "closed"  # tickets that reached resolved or closed (first time)
RESOLUTION_SECONDS = "resolution_seconds"  # sum of created -> first resolved/closed, for CLOSED


def key(family: str, name: str) -> str:
    """The counter of `name` in a per-key family: key(ACTIONS_BY, "AUTO_RESOLVE")."""
    return f"{family}:{name}"


def keyed(tally: Tally, family: str) -> dict[str, int]:
    """The per-key counters of `family`, by key: keyed(t, ACTIONS_BY) == {"AUTO_RESOLVE": 3}."""
    prefix = f"{family}:"
    return {k[len(prefix) :]: v for k, v in tally.items() if k.startswith(prefix)}


def total(tallies: Tallies, since: date | None = None, until: date | None = None) -> Tally:
    """The sum of the tallies of the days from `since` to `until`, both included."""
    summed: Tally = Counter()
    for day, tally in tallies.items():
        if (since is None or day >= since) and (until is None or day <= until):
            summed.update(tally)
    return summed
