"""The similarity layer: BM25 over each entry's weighted terms, and how far its best match can be trusted.

Confidence grows with the best score, the number of distinct terms that matched and the margin over the
runner-up, so a one-word or vague ticket never reaches the auto-resolve threshold.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

_K1 = 1.2
_B = 0.5
# Score at which evidence reaches 1 - 1/e; and the most a one- or two-term match can be trusted.
_SCORE_SCALE = 6.0
_TERM_CAPS = {1: 0.45, 2: 0.85}


class Document(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def terms(self) -> Counter[str]: ...


D = TypeVar("D", bound=Document)


@dataclass(frozen=True)
class Scored(Generic[D]):
    document: D
    score: float
    matched: tuple[str, ...]


class Index(Generic[D]):
    """BM25 statistics of a fixed set of documents (at least one)."""

    def __init__(self, documents: Sequence[D]) -> None:
        self.documents = tuple(documents)
        n = len(self.documents)
        document_frequency = Counter(term for doc in self.documents for term in doc.terms)
        self.idf = {
            term: math.log(1 + (n - df + 0.5) / (df + 0.5)) for term, df in document_frequency.items()
        }
        self._avg_length = sum(sum(doc.terms.values()) for doc in self.documents) / n

    def rank(self, query: dict[str, float], boost: Callable[[D], float]) -> list[Scored[D]]:
        """Every document with its score for the weighted query terms, best first (ties by id, so stable).

        A matching document's score is multiplied by its `boost`.
        """
        ranked = []
        for doc in self.documents:
            length_norm = _K1 * (1 - _B + _B * sum(doc.terms.values()) / self._avg_length)
            score = 0.0
            matched = []
            for term, weight in query.items():
                tf = doc.terms.get(term, 0)
                if tf:
                    score += weight * self.idf[term] * tf * (_K1 + 1) / (tf + length_norm)
                    matched.append(term)
            if score:
                score *= boost(doc)
            ranked.append(Scored(doc, score, tuple(sorted(matched))))
        ranked.sort(key=lambda s: (-s.score, s.document.id))
        return ranked

    def confidence(self, scored: Scored[D], ranked: list[Scored[D]], query: dict[str, float]) -> float:
        """Evidence (score, distinct matched terms, share of the query explained) and separation."""
        if scored.score <= 0:
            return 0.0
        runner_up = next((s.score for s in ranked if s is not scored), 0.0)
        margin = max(0.0, (scored.score - runner_up) / scored.score)
        strength = 1 - math.exp(-scored.score / _SCORE_SCALE)
        known = sum(self.idf[t] for t in query if t in self.idf)
        explained = sum(self.idf[t] for t in scored.matched) / known
        confidence = strength * ((0.6 + 0.4 * margin) * (0.75 + 0.25 * explained) + 0.25 * margin)
        term_cap = _TERM_CAPS.get(len(scored.matched), 0.99)
        return round(min(confidence, term_cap), 3)
