"""Ticket-to-ticket similarity for "similar tickets": the agent's BM25 over the candidates' words."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from shared.agent.embedded.bm25 import Index
from shared.agent.embedded.text import Lexicon, default_lexicon
from shared.domain.models import TicketPublic

_ISSUE_TYPE_WEIGHT = 2.0  # the title says what the problem is; the description often says much else
_SAME_CATEGORY_BOOST = 1.15


@dataclass(frozen=True)
class _Doc:
    id: str
    terms: Counter[str]


class TicketMatcher:
    """The `SimilarTickets` port, with the embedded agent's lexicon (read on first use)."""

    def __init__(self, lexicon: Lexicon | None = None) -> None:
        self._given = lexicon

    @cached_property
    def _lexicon(self) -> Lexicon:
        return self._given or default_lexicon()

    def _terms(self, ticket: TicketPublic) -> Counter[str]:
        words = self._lexicon.tokenize(ticket.issue_type) * 2 + self._lexicon.tokenize(ticket.description)
        return Counter(w for w in words if self._lexicon.is_content(w))

    def similar(
        self, ticket: TicketPublic, candidates: Sequence[TicketPublic], limit: int
    ) -> list[tuple[TicketPublic, float]]:
        others = [c for c in candidates if c.id != ticket.id]
        docs = [_Doc(f"{i:06d}", self._terms(c)) for i, c in enumerate(others)]
        if not docs or not any(d.terms for d in docs):
            return []
        query = {w: 1.0 for w in self._lexicon.tokenize(ticket.description) if self._lexicon.is_content(w)}
        query.update(
            {
                w: _ISSUE_TYPE_WEIGHT
                for w in self._lexicon.tokenize(ticket.issue_type)
                if self._lexicon.is_content(w)
            }
        )
        ranked = Index(docs).rank(
            query, lambda d: _SAME_CATEGORY_BOOST if others[int(d.id)].category == ticket.category else 1.0
        )
        return [(others[int(s.document.id)], round(s.score, 3)) for s in ranked if s.score > 0][:limit]
