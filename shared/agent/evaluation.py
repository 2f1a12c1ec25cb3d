"""`python -m manage agent eval FILE.jsonl`: an analyser and the decision table over labelled tickets.

The tool an operator runs before changing the knowledge base or moving the rollout up. A labelled file
has one JSON object a line, the dev sets' format (shared/data/README.md): ``expect`` (resolve, clarify,
escalate, human), ``issue_type``, ``description``, ``category`` and, optionally, ``language``.

It prints a confusion table (expected class x decided action), the harmful auto-resolves (an
AUTO_RESOLVE of a ticket that is not ``resolve``: the one outcome that must never happen), critical
recall (``escalate`` tickets escalated), coverage (``resolve`` tickets given a solution: AUTO_RESOLVE,
or SCHEDULE_FOLLOWUP, which sends the steps and checks later) and the clarification rate of vague
tickets, overall and by language. Exit status: 1 when any harmful auto-resolve occurs, 2 on a file it
cannot read, 0 otherwise. Standard library and the domain only: it needs no storage.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO

from shared.domain.analysis import Analysis
from shared.domain.decision import Thresholds, decide
from shared.domain.models import ActionType

EXPECTATIONS = ("resolve", "clarify", "escalate", "human")
UNAVAILABLE = "UNAVAILABLE"  # the analyser failed: the worker would defer the ticket to humans
COLUMNS = (
    ActionType.AUTO_RESOLVE.value,
    ActionType.SCHEDULE_FOLLOWUP.value,
    ActionType.ASSIGN_TO_TEAM.value,
    ActionType.ESCALATE.value,
    ActionType.REQUEST_CLARIFICATION.value,
    UNAVAILABLE,
)
ACCEPTABLE = {
    "resolve": {ActionType.AUTO_RESOLVE.value, ActionType.SCHEDULE_FOLLOWUP.value},
    "clarify": {ActionType.REQUEST_CLARIFICATION.value},
    "escalate": {ActionType.ESCALATE.value},
    "human": {ActionType.ASSIGN_TO_TEAM.value, ActionType.ESCALATE.value},
}
EXIT_OK, EXIT_HARMFUL, EXIT_BAD_FILE = 0, 1, 2
_TEXT_FIELDS = ("issue_type", "description", "category", "language")


class BadFile(ValueError):
    """The labelled file cannot be evaluated; the message says where and why."""


class Analyses(Protocol):
    def analyse(self, ticket: dict[str, Any]) -> Analysis: ...


@dataclass(frozen=True)
class Labelled:
    line: int
    expect: str
    ticket: dict[str, Any]
    language: str | None


def read_labelled(path: Path) -> list[Labelled]:
    """Every ticket of the file; raises BadFile on anything that is not a labelled ticket a line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadFile(f"{path}: cannot be read ({type(exc).__name__})") from exc
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BadFile(f"{path}:{number}: not JSON ({exc.msg})") from exc
        if not isinstance(raw, dict):
            raise BadFile(f"{path}:{number}: a line must be a JSON object")
        expect = raw.get("expect")
        if expect not in EXPECTATIONS:
            raise BadFile(f"{path}:{number}: expect must be one of {', '.join(EXPECTATIONS)}")
        for name in _TEXT_FIELDS:
            if raw.get(name) is not None and not isinstance(raw[name], str):
                raise BadFile(f"{path}:{number}: {name} must be a string")
        if not (raw.get("description") or raw.get("issue_type")):
            raise BadFile(f"{path}:{number}: needs a description or an issue_type")
        ticket: dict[str, Any] = {
            "issue_type": raw.get("issue_type") or "",
            "description": raw.get("description") or "",
            "category": raw.get("category") or "other",
            "tags": [],
            "user": "eval",
            "ticket_id": number,
        }
        rows.append(Labelled(number, expect, ticket, raw.get("language")))
    if not rows:
        raise BadFile(f"{path}: no labelled tickets")
    return rows


@dataclass(frozen=True)
class Outcome:
    row: Labelled
    decided: str
    language: str
    entry: str | None = None
    confidence: float | None = None
    reasoning: str = ""

    @property
    def harmful(self) -> bool:
        return self.decided == ActionType.AUTO_RESOLVE.value and self.row.expect != "resolve"

    @property
    def correct(self) -> bool:
        return self.decided in ACCEPTABLE[self.row.expect]


@dataclass(frozen=True)
class Rate:
    hits: int
    total: int

    def __str__(self) -> str:
        if not self.total:
            return "-"
        return f"{self.hits}/{self.total} ({100 * self.hits / self.total:.1f}%)"


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)

    def confusion(self) -> dict[str, Counter[str]]:
        table: dict[str, Counter[str]] = {expect: Counter() for expect in EXPECTATIONS}
        for o in self.outcomes:
            table[o.row.expect][o.decided] += 1
        return table

    @property
    def harmful(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.harmful]

    def _rate(self, expect: str, outcomes: Sequence[Outcome] | None = None) -> Rate:
        rows = [o for o in (self.outcomes if outcomes is None else outcomes) if o.row.expect == expect]
        return Rate(sum(o.correct for o in rows), len(rows))

    def critical_recall(self, outcomes: Sequence[Outcome] | None = None) -> Rate:
        return self._rate("escalate", outcomes)

    def coverage(self, outcomes: Sequence[Outcome] | None = None) -> Rate:
        return self._rate("resolve", outcomes)

    def clarification_rate(self, outcomes: Sequence[Outcome] | None = None) -> Rate:
        return self._rate("clarify", outcomes)

    def human_rate(self, outcomes: Sequence[Outcome] | None = None) -> Rate:
        return self._rate("human", outcomes)

    def by_language(self) -> dict[str, list[Outcome]]:
        groups: dict[str, list[Outcome]] = {}
        for o in self.outcomes:
            groups.setdefault(o.language, []).append(o)
        return dict(sorted(groups.items()))

    @property
    def exit_code(self) -> int:
        return EXIT_HARMFUL if self.harmful else EXIT_OK


def evaluate(
    rows: Sequence[Labelled],
    analyser: Analyses,
    thresholds: Thresholds,
    detect: Callable[[dict[str, Any]], str] | None = None,
) -> Report:
    """Each ticket through the analyser and the decision table. An analyser failure is the worker's
    deferral to humans (UNAVAILABLE), never an action."""
    report = Report()
    for row in rows:
        language = row.language or (detect(row.ticket) if detect else "-")
        try:
            analysis = analyser.analyse(dict(row.ticket))
        except Exception as exc:  # the worker defers the ticket; the report says how often
            report.outcomes.append(Outcome(row, UNAVAILABLE, language, reasoning=type(exc).__name__))
            continue
        entries = analysis.knowledge_base_entries
        report.outcomes.append(
            Outcome(
                row,
                decide(analysis, thresholds).value,
                language,
                entries[0] if entries else None,
                analysis.confidence,
                analysis.reasoning,
            )
        )
    return report


def render(report: Report, out: TextIO) -> None:
    print(f"{'expected':<10}" + "".join(f"{c:>{len(c) + 2}}" for c in COLUMNS) + "   correct", file=out)
    for expect, counts in report.confusion().items():
        total = sum(counts.values())
        correct = sum(n for action, n in counts.items() if action in ACCEPTABLE[expect])
        cells = "".join(f"{counts.get(c, 0):>{len(c) + 2}}" for c in COLUMNS)
        print(f"{expect:<10}{cells}   {Rate(correct, total)}", file=out)
    print(file=out)
    harmful = report.harmful
    print(f"harmful auto-resolves: {len(harmful)}", file=out)
    for o in harmful:
        ticket = o.row.ticket
        print(
            f"  line {o.row.line} [{o.row.expect}, {o.language}] {ticket['issue_type']!r}: "
            f"{ticket['description'][:100]!r} -> {o.entry} at {o.confidence}",
            file=out,
        )
    print(f"critical recall (escalate tickets escalated): {report.critical_recall()}", file=out)
    print(f"coverage (known problems given a solution): {report.coverage()}", file=out)
    print(f"clarification rate (vague tickets asked back): {report.clarification_rate()}", file=out)
    print(f"service requests to a person: {report.human_rate()}", file=out)
    unavailable = sum(o.decided == UNAVAILABLE for o in report.outcomes)
    if unavailable:
        print(f"analyser failures (deferred to humans): {unavailable}", file=out)
    missed = [o for o in report.outcomes if not o.correct and not o.harmful]
    if missed:
        print(f"\nother misses: {len(missed)}", file=out)
        for o in missed:
            print(
                f"  line {o.row.line} [{o.row.expect}, {o.language}] -> {o.decided} "
                f"({o.entry}, {o.confidence}): {o.row.ticket['description'][:80]!r}",
                file=out,
            )
    print(file=out)
    heads = ("tickets", "harmful", "critical", "coverage", "clarify", "human")
    print(f"{'language':<10}" + "".join(f"{h:>18}" for h in heads), file=out)
    for language, outcomes in report.by_language().items():
        figures = (
            str(len(outcomes)),
            str(sum(o.harmful for o in outcomes)),
            str(report.critical_recall(outcomes)),
            str(report.coverage(outcomes)),
            str(report.clarification_rate(outcomes)),
            str(report.human_rate(outcomes)),
        )
        print(f"{language:<10}" + "".join(f"{c:>18}" for c in figures), file=out)


def run(
    path: Path,
    analyser: Analyses,
    thresholds: Thresholds,
    out: TextIO,
    err: TextIO,
    describe: str = "",
) -> int:
    """Reads, evaluates and prints; the exit status (see the module's docstring)."""
    try:
        rows = read_labelled(path)
    except BadFile as exc:
        print(f"agent eval: {exc}", file=err)
        return EXIT_BAD_FILE
    detect = getattr(analyser, "detect", None)
    language_of = (lambda ticket: str(detect(ticket).code)) if callable(detect) else None
    report = evaluate(rows, analyser, thresholds, language_of)
    print(
        f"agent eval: {path.name}, {len(rows)} tickets, {describe or type(analyser).__name__}; "
        f"thresholds high {thresholds.high}, medium {thresholds.medium}, "
        f"success {thresholds.success_probability}\n",
        file=out,
    )
    render(report, out)
    return report.exit_code
