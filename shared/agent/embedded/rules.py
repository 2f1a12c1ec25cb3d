"""The rules layer: trigger rules that identify incidents and service requests whatever the wording.

These are the cases where a confident-looking text match to a self-help article would do harm, so they
are not left to similarity: a matching incident rule wins over everything, then a service-request rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise, product
from typing import Protocol, TypeVar

from shared.agent.embedded.text import Lexicon, default_lexicon

# Maximum distance, in tokens, between the parts of one trigger rule.
RULE_WINDOW = 12
# The kinds that rules decide, strongest first.
RULE_PRECEDENCE = ("incident", "service_request")

Phrase = tuple[str, ...]
Spans = list[tuple[int, int]]


@dataclass(frozen=True)
class Rule:
    """A trigger such as ``"lost|left + laptop|phone ! connection"`` or ``"need > new > laptop"``.

    It matches when one alternative of every group occurs within RULE_WINDOW tokens (in the written
    order when the groups are separated by ``>``) and no excluded phrase occurs anywhere in the ticket.
    """

    source: str
    groups: tuple[tuple[Phrase, ...], ...]
    exclude: tuple[Phrase, ...]
    ordered: bool

    @classmethod
    def parse(cls, source: str, lexicon: Lexicon | None = None) -> Rule:
        """The rule's words are normalised like a ticket's (the shipped lexicon unless one is given)."""
        words = lexicon if lexicon is not None else default_lexicon()
        positive, _, negative = source.partition("!")
        ordered = ">" in positive
        if ordered and "+" in positive:
            raise ValueError(f"rule {source!r} mixes '+' and '>'")

        def alternatives(part: str) -> tuple[Phrase, ...]:
            return tuple(phrase for alt in part.split("|") if (phrase := tuple(words.tokenize(alt))))

        groups = tuple(alternatives(part) for part in positive.split(">" if ordered else "+"))
        if not all(groups):
            raise ValueError(f"empty group in rule {source!r}")
        return cls(source, groups, alternatives(negative), ordered)

    def match(self, tokens: list[str]) -> Spans | None:
        """The (start, end) token span of each group, or None when the rule does not match."""
        if any(_positions(tokens, phrase) for phrase in self.exclude):
            return None
        candidates = []
        for group in self.groups:
            found = sorted((start, start + len(p)) for p in group for start in _positions(tokens, p))
            if not found:
                return None
            candidates.append(found[:20])
        return next((list(combo) for combo in product(*candidates) if self._fits(combo)), None)

    def _fits(self, combo: tuple[tuple[int, int], ...]) -> bool:
        if self.ordered and any(nxt[0] < prev[1] for prev, nxt in pairwise(combo)):
            return False
        return max(end for _, end in combo) - min(start for start, _ in combo) <= RULE_WINDOW


def _positions(tokens: list[str], phrase: Phrase) -> list[int]:
    """Where `phrase` starts in `tokens`, in order. The scan for its first word is list.index's
    (most phrases' first word is not in the ticket at all): the agent's hottest loop."""
    n, at = len(phrase), -1
    found: list[int] = []
    while True:
        try:
            at = tokens.index(phrase[0], at + 1)
        except ValueError:
            return found
        if tuple(tokens[at : at + n]) == phrase:
            found.append(at)


class Triggered(Protocol):
    @property
    def kind(self) -> str: ...

    @property
    def rules(self) -> tuple[Rule, ...]: ...


T = TypeVar("T", bound=Triggered)


def first_triggered(candidates: Iterable[T], tokens: list[str]) -> tuple[T, Spans] | None:
    """The first candidate (in the given order) of the strongest kind whose rule matches, with its spans."""
    ordered = list(candidates)
    for kind in RULE_PRECEDENCE:
        for candidate in ordered:
            if candidate.kind != kind:
                continue
            spans = next((s for rule in candidate.rules if (s := rule.match(tokens))), None)
            if spans is not None:
                return candidate, spans
    return None
