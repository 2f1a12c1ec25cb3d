"""The embedded agent: the rules layer, then the similarity layer, over the shipped knowledge base.

Offline, deterministic, standard library only. A matching incident rule wins over everything, then a
service-request rule (rules.py); otherwise the closest entry by BM25 (bm25.py) is proposed as far as its
confidence allows, and a vague ticket is sent back for clarification.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.agent.embedded.bm25 import Index, Scored
from shared.agent.embedded.knowledge import Entry, KnowledgeBase
from shared.agent.embedded.rules import first_triggered
from shared.agent.embedded.text import Lexicon
from shared.domain.clarification import CLARIFYING_QUESTIONS

if TYPE_CHECKING:
    from shared.domain.analysis import Analysis

AGENT_KIND = "embedded"

# Confidence below which the agent asks for clarification instead of proposing an entry.
CLARIFY_BELOW = 0.5
# A fix whose runner-up is an incident/service entry this close is never proposed confidently.
RIVAL_RATIO = 0.75
RIVAL_CAP = 0.7
# Floors for rule matches: a rule is explicit evidence, independent of wording.
RULE_FLOORS = {"incident": 0.85, "service_request": 0.82}
# An incident that is only the closest text match (no rule) is still escalated from this confidence.
INCIDENT_SIMILARITY_MIN = 0.35

_ISSUE_TYPE_WEIGHT = 1.3
_CATEGORY_BOOST = 1.15


@dataclass(frozen=True)
class _Ticket:
    category: str
    tokens: list[str]
    surface: dict[str, str]
    query: dict[str, float]

    def words(self, tokens: Iterable[str]) -> str:
        return ", ".join(f"'{self.surface.get(token, token)}'" for token in tokens)


_Scored = Scored[Entry]


class EmbeddedAgent:
    """Analyses a helpdesk ticket against the knowledge base; the same ticket always gets the same analysis.

    The knowledge base and its lexicon are read once, here (the shipped ones unless paths are given);
    construction raises ValueError on invalid ones.
    """

    def __init__(self, kb_path: Path | None = None, lexicon_path: Path | None = None) -> None:
        knowledge = KnowledgeBase.load(kb_path, lexicon_path)
        self.version: str = knowledge.version
        self.entries: tuple[Entry, ...] = knowledge.entries
        self._lexicon: Lexicon = knowledge.lexicon
        self._index: Index[Entry] = Index(self.entries)

    def analyse(self, ticket: dict[str, Any]) -> Analysis:
        parsed = self._parse(ticket)
        ranked = self._index.rank(
            parsed.query, lambda e: _CATEGORY_BOOST if parsed.category in e.ticket_categories else 1.0
        )
        triggered = first_triggered((s.document for s in ranked), parsed.tokens)
        if triggered is not None:
            entry, spans = triggered
            scored = next(s for s in ranked if s.document is entry)
            said = parsed.words(t for start, end in spans for t in parsed.tokens[start:end])
            reason = (
                f"Treated as {_KIND_WORDS[entry.kind]}: the ticket mentions {said}, which identifies "
                f"'{entry.title}' ({entry.id})."
            )
            confidence = max(RULE_FLOORS[entry.kind], self._index.confidence(scored, ranked, parsed.query))
            return self._render(scored, ranked, confidence, reason)

        best = ranked[0]
        if best.score <= 0:
            return self._clarify(ranked, parsed, 0.05, "No knowledge-base entry shares a term with it.")
        confidence = self._index.confidence(best, ranked, parsed.query)
        terms = parsed.words(best.matched)
        title, entry_id, kind = best.document.title, best.document.id, best.document.kind
        if kind == "incident" and confidence >= INCIDENT_SIMILARITY_MIN:
            reason = f"It resembles the incident '{title}' ({entry_id}) on the words {terms}."
            return self._render(best, ranked, confidence, reason)
        if confidence < CLARIFY_BELOW:
            why = f"The closest entry, '{title}', shares only the words {terms}."
            return self._clarify(ranked, parsed, confidence, why)
        reason = f"It matches '{title}' ({entry_id}) on the words {terms}."
        if kind == "fix":
            rival = next((s for s in ranked[1:] if s.document.kind != "fix"), None)
            if rival is not None and rival.score >= RIVAL_RATIO * best.score:
                confidence = min(confidence, RIVAL_CAP)
                reason += (
                    f" It also resembles the {_KIND_WORDS[rival.document.kind]} '{rival.document.title}', "
                    "so a person should check before it is closed."
                )
            elif parsed.category == "security":
                confidence = min(confidence, RIVAL_CAP)
                reason += " It was filed as a security ticket, so a person should check before it is closed."
        return self._render(best, ranked, confidence, reason)

    def _parse(self, ticket: dict[str, Any]) -> _Ticket:
        lexicon = self._lexicon
        issue_type = lexicon.normalise(str(ticket.get("issue_type") or ""))
        description = lexicon.normalise(str(ticket.get("description") or ""))
        query = {token: 1.0 for token, _ in description if lexicon.is_content(token)}
        query.update({token: _ISSUE_TYPE_WEIGHT for token, _ in issue_type if lexicon.is_content(token)})
        words = [*issue_type, ("", ""), *description]  # the gap keeps rules from spanning the two fields
        surface: dict[str, str] = {}
        for token, raw in words:
            surface.setdefault(token, raw)
        return _Ticket(
            category=str(ticket.get("category") or "other"),
            tokens=[token for token, _ in words],
            surface=surface,
            query=query,
        )

    def _render(self, scored: _Scored, ranked: list[_Scored], confidence: float, reason: str) -> Analysis:
        # Imported here: building the first pydantic model reads its plugins' entry points, and
        # importing this package reads no file.
        from shared.domain.analysis import Analysis, Details, Provenance, Solution

        entry = scored.document
        related = [s.document.id for s in ranked if s.score > 0 and s is not scored][:2]
        return Analysis(
            confidence=round(confidence, 3),
            recommended_action=_ACTIONS[entry.kind],
            reasoning=reason,
            analysis=Details(
                severity=entry.severity,
                category=entry.category,
                suggested_team=entry.suggested_team,
                complexity=entry.complexity,
            ),
            solution=Solution(
                steps=list(entry.steps),
                estimated_time=entry.estimated_time,
                success_probability=entry.success_probability,
            ),
            knowledge_base_entries=[entry.id, *related],
            agent=Provenance(kind=AGENT_KIND, version=self.version),
        )

    def _clarify(self, ranked: list[_Scored], ticket: _Ticket, confidence: float, why: str) -> Analysis:
        from shared.domain.analysis import Analysis, Details, Provenance, Solution  # see _render

        # A vague ticket filed as security stays critical, so the decision table escalates it.
        security = ticket.category == "security"
        return Analysis(
            confidence=round(min(confidence, CLARIFY_BELOW - 0.01), 3),
            recommended_action="request_clarification",
            reasoning=f"The ticket is too vague to act on. {why}",
            analysis=Details(
                severity="high" if security else "medium",
                category=ticket.category,
                suggested_team="Security Operations" if security else "Service Desk",
                complexity="medium",
            ),
            solution=Solution(
                steps=list(CLARIFYING_QUESTIONS),
                estimated_time="unknown",
                success_probability=0.0,
            ),
            knowledge_base_entries=[s.document.id for s in ranked if s.score > 0][:3],
            agent=Provenance(kind=AGENT_KIND, version=self.version),
        )


_ACTIONS = {"fix": "auto_resolve", "service_request": "assign_to_team", "incident": "escalate"}
_KIND_WORDS = {"fix": "a known problem", "service_request": "a service request", "incident": "an incident"}
