"""The embedded agent: the rules layer, then the similarity layer, over the shipped knowledge base.

Offline, deterministic, standard library only. A matching incident rule wins over everything, then a
service-request rule (rules.py); otherwise the closest entry by BM25 (bm25.py) is proposed as far as its
confidence allows, and a vague ticket is sent back for clarification.

A ticket is first given its language (languages.py): one the agent supports is read into the knowledge
base's English words and answered in its own language; one it does not support is read with the
cross-language critical words only, so it is still escalated when it names an incident, and is never
auto-resolved: nobody can tell that a fix matched on a few borrowed English words is the right one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.agent.embedded.bm25 import Index, Scored
from shared.agent.embedded.knowledge import Entry, KnowledgeBase
from shared.agent.embedded.languages import ENGLISH, Detected, Reader
from shared.agent.embedded.rules import first_triggered
from shared.agent.embedded.text import MAX_CHARS, Lexicon, stem
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
    language: Detected
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

    def __init__(
        self, kb_path: Path | None = None, lexicon_path: Path | None = None, languages_dir: Path | None = None
    ) -> None:
        knowledge = KnowledgeBase.load(kb_path, lexicon_path, languages_dir)
        self.version: str = knowledge.version
        self.entries: tuple[Entry, ...] = knowledge.entries
        self._lexicon: Lexicon = knowledge.lexicon
        self._index: Index[Entry] = Index(self.entries)
        self.languages = knowledge.languages
        critical = (knowledge.languages.critical, knowledge.languages.critical_phrases)
        self._readers: dict[str, Reader] = {
            language.code: Reader(self._lexicon, language, *critical)
            for language in knowledge.languages.known
            if language.supported and language.code != ENGLISH
        }
        self._unsupported = Reader(self._lexicon, None, *critical)
        lexicon = self._lexicon
        self._english_words = (
            frozenset(self._index.idf) | lexicon.stopwords | lexicon.generic | set(lexicon.synonyms)
        )

    def _is_english_word(self, word: str) -> bool:
        return word in self._english_words or stem(word) in self._english_words

    def detect(self, ticket: dict[str, Any]) -> Detected:
        """The language the ticket is written in (English when it cannot tell)."""
        text = f"{ticket.get('issue_type') or ''} {ticket.get('description') or ''}"
        return self.languages.detect(text[:MAX_CHARS], self._is_english_word)

    def analyse(self, ticket: dict[str, Any]) -> Analysis:
        parsed = self._parse(ticket)
        ranked = self._rank(parsed)
        triggered = first_triggered((s.document for s in ranked), parsed.tokens)
        if (triggered is None or triggered[0].kind != "incident") and self._names_foreign_critical(parsed):
            # A ticket read as English may still name an incident in another language ("laptop gestolen").
            other = self._parse(ticket, self._unsupported)
            other_ranked = self._rank(other)
            found = first_triggered((s.document for s in other_ranked), other.tokens)
            if found is not None and found[0].kind == "incident":
                parsed, ranked, triggered = other, other_ranked, found
        if triggered is not None:
            entry, spans = triggered
            scored = next(s for s in ranked if s.document is entry)
            said = parsed.words(t for start, end in spans for t in parsed.tokens[start:end])
            reason = (
                f"Treated as {_KIND_WORDS[entry.kind]}: the ticket mentions {said}, which identifies "
                f"'{entry.title}' ({entry.id})."
            )
            confidence = max(RULE_FLOORS[entry.kind], self._index.confidence(scored, ranked, parsed.query))
            return self._render(scored, ranked, parsed, confidence, reason)

        best = ranked[0]
        if best.score <= 0:
            return self._clarify(ranked, parsed, 0.05, "No knowledge-base entry shares a term with it.")
        confidence = self._index.confidence(best, ranked, parsed.query)
        terms = parsed.words(best.matched)
        title, entry_id, kind = best.document.title, best.document.id, best.document.kind
        if kind == "incident" and confidence >= INCIDENT_SIMILARITY_MIN:
            reason = f"It resembles the incident '{title}' ({entry_id}) on the words {terms}."
            return self._render(best, ranked, parsed, confidence, reason)
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
        return self._render(best, ranked, parsed, confidence, reason)

    def _rank(self, parsed: _Ticket) -> list[_Scored]:
        return self._index.rank(
            parsed.query, lambda e: _CATEGORY_BOOST if parsed.category in e.ticket_categories else 1.0
        )

    def _names_foreign_critical(self, parsed: _Ticket) -> bool:
        """Whether an English ticket has a critical word of another language that is no English word."""
        if not parsed.language.english:
            return False
        critical = self.languages.critical
        surface = list(parsed.surface.values())
        text = " ".join(surface)
        return any(not self._is_english_word(w) and critical.lookup(w) for w in surface) or any(
            pattern.search(text) for pattern, _ in self.languages.critical_phrases
        )

    def _parse(self, ticket: dict[str, Any], reader: Reader | None = None) -> _Ticket:
        language = self.detect(ticket)
        lexicon: Lexicon | Reader = reader or (
            self._lexicon if language.code == ENGLISH else self._readers.get(language.code, self._unsupported)
        )
        issue_type = lexicon.normalise(str(ticket.get("issue_type") or ""))
        description = lexicon.normalise(str(ticket.get("description") or ""))
        query = {token: 1.0 for token, _ in description if lexicon.is_content(token)}
        query.update({token: _ISSUE_TYPE_WEIGHT for token, _ in issue_type if lexicon.is_content(token)})
        words = [*issue_type, ("", ""), *description]  # the gap keeps rules from spanning the two fields
        surface: dict[str, str] = {}
        for token, raw in words:
            surface.setdefault(token, raw)
        return _Ticket(
            language=language,
            category=str(ticket.get("category") or "other"),
            tokens=[token for token, _ in words],
            surface=surface,
            query=query,
        )

    def _render(
        self, scored: _Scored, ranked: list[_Scored], ticket: _Ticket, confidence: float, reason: str
    ) -> Analysis:
        # Imported here: building the first pydantic model reads its plugins' entry points, and
        # importing this package reads no file.
        from shared.domain.analysis import Analysis, Details, Provenance, Solution

        entry = scored.document
        if entry.kind == "fix" and not ticket.language.supported:
            why = (
                f"It is written in {ticket.language.name}, which the agent does not read, so its closest "
                f"match, '{entry.title}' ({entry.id}), is not offered as a fix; a person should read it."
            )
            return self._clarify(ranked, ticket, confidence, why)
        related = [s.document.id for s in ranked if s.score > 0 and s is not scored][:2]
        return Analysis(
            confidence=round(confidence, 3),
            recommended_action=_ACTIONS[entry.kind],
            reasoning=reason + self._written_in(ticket),
            analysis=Details(
                severity=entry.severity,
                category=entry.category,
                suggested_team=entry.suggested_team,
                complexity=entry.complexity,
            ),
            solution=Solution(
                steps=self._steps(entry, ticket.language),
                estimated_time=entry.estimated_time,
                success_probability=entry.success_probability,
            ),
            knowledge_base_entries=[entry.id, *related],
            agent=Provenance(kind=AGENT_KIND, version=self.version),
        )

    def _steps(self, entry: Entry, detected: Detected) -> list[str]:
        """The entry's steps in the ticket's language when written, else in English after a note."""
        language = self.languages.get(detected.code)
        if detected.english or language is None or not language.supported:
            return list(entry.steps)
        if entry.id in language.steps:
            return list(language.steps[entry.id])
        return [language.steps_note, *entry.steps]

    @staticmethod
    def _written_in(ticket: _Ticket) -> str:
        if ticket.language.english:
            return ""
        return f" Written in {ticket.language.name} ({ticket.language.code})."

    def _clarify(self, ranked: list[_Scored], ticket: _Ticket, confidence: float, why: str) -> Analysis:
        from shared.domain.analysis import Analysis, Details, Provenance, Solution  # see _render

        # A vague ticket filed as security stays critical, so the decision table escalates it.
        security = ticket.category == "security"
        language = self.languages.get(ticket.language.code)
        localised = language is not None and language.supported and not ticket.language.english
        questions = list(language.questions) if localised and language else list(CLARIFYING_QUESTIONS)
        vague = "The ticket is too vague to act on. " if ticket.language.supported else ""
        # the questions the ticket's author is asked, in their language
        own = {"questions": questions} if localised else {}
        return Analysis(
            confidence=round(min(confidence, CLARIFY_BELOW - 0.01), 3),
            recommended_action="request_clarification",
            reasoning=vague + why + self._written_in(ticket),
            analysis=Details(
                severity="high" if security else "medium",
                category=ticket.category,
                suggested_team="Security Operations" if security else "Service Desk",
                complexity="medium",
            ),
            solution=Solution(
                steps=questions,
                estimated_time="unknown",
                success_probability=0.0,
            ),
            knowledge_base_entries=[s.document.id for s in ranked if s.score > 0][:3],
            agent=Provenance(kind=AGENT_KIND, version=self.version),
            **own,
        )


_ACTIONS = {"fix": "auto_resolve", "service_request": "assign_to_team", "incident": "escalate"}
_KIND_WORDS = {"fix": "a known problem", "service_request": "a service request", "incident": "an incident"}
