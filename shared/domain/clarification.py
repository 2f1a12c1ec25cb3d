"""What a ticket too vague to act on is asked (SPEC §6: REQUEST_CLARIFICATION → `pending_clarification`
with questions).

The one list: the action records it when the analysis brings no questions of its own, and the embedded
agent offers it as the steps of its clarification. Standard library only, so that the embedded agent,
which imports it, needs nothing beyond the standard library either.
"""

CLARIFYING_QUESTIONS = (
    "What exactly happens, and what error message (if any) do you see?",
    "Which device, application or system is affected?",
    "When did it start, and did anything change just before?",
    "Is anyone else affected?",
)
