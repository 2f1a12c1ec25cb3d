"""The analysis of a ticket, as both analysers (the embedded agent and the agent service's client)
produce it and the decision table and the ticket changes read it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Details(BaseModel):
    severity: str | None = None
    category: str | None = None
    suggested_team: str | None = None
    complexity: str | None = None


class Solution(BaseModel):
    steps: list[str] = Field(default_factory=list)
    estimated_time: str | None = None
    success_probability: float = 0.0


class Provenance(BaseModel):
    """Which analyser answered: `embedded` or `external`, and its version."""

    kind: str
    version: str


class Analysis(BaseModel):
    """SPEC §6 step 1. `questions` are the analysis's own clarifying questions, when it has some.

    A field left out stays out of `as_dict()`, which is the JSON the ticket's `agent` summary and
    history entries keep, so a stored summary is exactly what the analyser said."""

    confidence: float | None = None
    recommended_action: str = ""
    reasoning: str = ""
    analysis: Details = Field(default_factory=Details)
    solution: Solution = Field(default_factory=Solution)
    knowledge_base_entries: list[str] = Field(default_factory=list)
    agent: Provenance | None = None
    questions: list[str] | None = None

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_unset=True)
